-- Spam training requests: a user moved (or copied) a message into a \Junk mailbox
-- (spam) or out of one into another mailbox that is not \Trash (ham). Written in the
-- same transaction as the COPY/MOVE that caused it, drained by the learning worker
-- (mailroom-delivery), which sends the content to rspamd's controller and deletes
-- the row. A content that disappears (its last copy expunged) takes its requests.
CREATE TABLE spam_training (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    content_id      INTEGER NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    class           TEXT NOT NULL CHECK (class IN ('spam', 'ham')),
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- Unix seconds before which the worker does not try again (rspamd was down).
    next_attempt    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX spam_training_due ON spam_training(next_attempt);
CREATE INDEX spam_training_content ON spam_training(content_id);
CREATE INDEX spam_training_account ON spam_training(account_id);
