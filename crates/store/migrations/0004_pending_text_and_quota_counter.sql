-- Delivery no longer feeds the FTS5 index in its own transaction: the text waits in
-- content_text_pending (a plain table, cheap to insert into), and the writer moves it
-- into the index in batches when it has time. SEARCH BODY looks in both, so results
-- do not depend on the indexer's progress.
CREATE TABLE content_text_pending (
    content_id  INTEGER PRIMARY KEY REFERENCES contents(id) ON DELETE CASCADE,
    body        TEXT NOT NULL
);

-- Bytes used by each account, kept by triggers, so quota checks do not sum every
-- message of the account inside the single writer.
ALTER TABLE accounts ADD COLUMN used_bytes INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET used_bytes = (
    SELECT coalesce(sum(m.size), 0) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id
    WHERE b.account_id = accounts.id
);
CREATE TRIGGER messages_used_add AFTER INSERT ON messages BEGIN
    UPDATE accounts SET used_bytes = used_bytes + NEW.size
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = NEW.mailbox_id);
END;
-- Messages are removed before their mailbox (see delete_mailbox), so the mailbox row
-- is still there to name the account.
CREATE TRIGGER messages_used_sub AFTER DELETE ON messages BEGIN
    UPDATE accounts SET used_bytes = used_bytes - OLD.size
    WHERE id = (SELECT account_id FROM mailboxes WHERE id = OLD.mailbox_id);
END;
