-- Access control lists of mailboxes (RFC 4314). The owner of a mailbox always has
-- every right and has no row here. `identifier` is 'anyone', 'authenticated' or an
-- account's address; for an address, `account_id` names that account, so deleting
-- the account removes its grants as well as the rows of its own mailboxes.
-- `rights` holds RFC 4314 letters from "lrswipkxtea" in that order (the legacy
-- "c" and "d" are expanded before they get here).
CREATE TABLE acl (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    identifier  TEXT NOT NULL COLLATE NOCASE,
    account_id  INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    rights      TEXT NOT NULL,
    PRIMARY KEY (mailbox_id, identifier)
) WITHOUT ROWID;
-- Which mailboxes are shared with an account, or with everyone.
CREATE INDEX acl_account ON acl(account_id, mailbox_id);
CREATE INDEX acl_identifier ON acl(identifier, mailbox_id);
