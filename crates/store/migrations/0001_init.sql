-- mailroom store schema, version 1.
-- Addresses compare case-insensitively in the domain; the local part is compared
-- per configuration in Rust, so the unique indexes use NOCASE on the whole address
-- (two accounts may not differ only by case).

CREATE TABLE domains (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX domains_name ON domains(name COLLATE NOCASE);

CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    domain_id       INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    -- PHC string of an argon2id hash; the password itself is never stored.
    password_hash   TEXT NOT NULL,
    quota_bytes     INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX accounts_address ON accounts(address COLLATE NOCASE);

-- Further addresses delivering to an account. `address` is either a full address
-- (alias) or '@domain' (the domain's catch-all).
CREATE TABLE aliases (
    id          INTEGER PRIMARY KEY,
    address     TEXT NOT NULL,
    domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX aliases_address ON aliases(address COLLATE NOCASE);

CREATE TABLE mailboxes (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    -- Full hierarchical name with '/' as delimiter, UTF-8. INBOX is always 'INBOX'.
    name            TEXT NOT NULL,
    uidvalidity     INTEGER NOT NULL,
    uidnext         INTEGER NOT NULL DEFAULT 1,
    highestmodseq   INTEGER NOT NULL DEFAULT 1,
    -- RFC 6154 attribute such as '\Sent', or NULL.
    special_use     TEXT,
    -- A mailbox deleted while it had children stays as a \Noselect placeholder
    -- (RFC 9051 §6.3.5).
    noselect        INTEGER NOT NULL DEFAULT 0,
    -- Highest UID some IMAP4rev1 session has already been told is \Recent.
    recent_uid      INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX mailboxes_name ON mailboxes(account_id, name);

-- Subscriptions are names, not mailboxes: RFC 9051 §6.3.7 lets a client subscribe to
-- a name that does not exist (LIST-EXTENDED then reports \NonExistent).
CREATE TABLE subscriptions (
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
) WITHOUT ROWID;

-- Message content, stored once however many mailboxes hold a copy.
CREATE TABLE contents (
    id              INTEGER PRIMARY KEY,
    sha256          BLOB NOT NULL UNIQUE,
    size            INTEGER NOT NULL,
    raw             BLOB NOT NULL,
    -- Number of rows in `messages` that point here; maintained by triggers.
    refcount        INTEGER NOT NULL DEFAULT 0,
    envelope        TEXT NOT NULL,
    body_structure  TEXT NOT NULL,
    body            TEXT NOT NULL,
    sent_date       INTEGER,
    sent_offset     INTEGER,
    created_at      INTEGER NOT NULL
);

-- Decoded top-level header fields, for SEARCH HEADER/FROM/TO/SUBJECT...
-- `value_folded` is the value lower-cased for case-insensitive substring search.
CREATE TABLE content_headers (
    content_id      INTEGER NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    name            TEXT NOT NULL,
    value           TEXT NOT NULL,
    value_folded    TEXT NOT NULL,
    PRIMARY KEY (content_id, position)
) WITHOUT ROWID;
CREATE INDEX content_headers_name ON content_headers(name, content_id);

-- Body text for SEARCH BODY/TEXT: FTS5 with the trigram tokenizer answers substring
-- queries of three or more characters from the index; rowid = contents.id.
-- Text is stored lower-cased so short needles can use instr() on the same table.
CREATE VIRTUAL TABLE content_text USING fts5(body, tokenize = 'trigram');

CREATE TABLE messages (
    mailbox_id      INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid             INTEGER NOT NULL,
    content_id      INTEGER NOT NULL REFERENCES contents(id),
    modseq          INTEGER NOT NULL,
    -- Bit set of system flags (see Flags in Rust).
    flags           INTEGER NOT NULL DEFAULT 0,
    -- Keywords, space separated, sorted.
    keywords        TEXT NOT NULL DEFAULT '',
    internal_date   INTEGER NOT NULL,
    internal_offset INTEGER NOT NULL DEFAULT 0,
    size            INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_content ON messages(content_id);

-- Reference counting of contents: the last copy to go takes the content with it.
CREATE TRIGGER messages_ref AFTER INSERT ON messages BEGIN
    UPDATE contents SET refcount = refcount + 1 WHERE id = NEW.content_id;
END;
CREATE TRIGGER messages_unref AFTER DELETE ON messages BEGIN
    UPDATE contents SET refcount = refcount - 1 WHERE id = OLD.content_id;
    DELETE FROM content_text WHERE rowid = OLD.content_id
        AND (SELECT refcount FROM contents WHERE id = OLD.content_id) = 0;
    DELETE FROM contents WHERE id = OLD.content_id AND refcount = 0;
END;

-- UIDs expunged from each mailbox and the MODSEQ of their expunge (RFC 7162 QRESYNC).
CREATE TABLE expunged (
    mailbox_id  INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid         INTEGER NOT NULL,
    modseq      INTEGER NOT NULL,
    PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX expunged_modseq ON expunged(mailbox_id, modseq);

-- Store-wide counters, such as the last UIDVALIDITY handed out (so a mailbox deleted
-- and created again never gets the UIDVALIDITY it had, RFC 9051 §2.3.1.1).
CREATE TABLE counters (
    name    TEXT PRIMARY KEY,
    value   INTEGER NOT NULL
) WITHOUT ROWID;
