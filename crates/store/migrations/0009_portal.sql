-- The web portal: administrators, app passwords and portal sign-in sessions.

-- Accounts that may use the portal's administration pages (domains, accounts,
-- aliases, the queue, server status). Off by default; `mailroom user admin`.
ALTER TABLE accounts ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;

-- Passwords a user creates for one mail client each, so the account password (or,
-- later, single sign-on) never sits in a client. Only the argon2id PHC string is
-- kept; the secret is shown once, at creation. `scope` says which logins may use it.
CREATE TABLE app_passwords (
    id              INTEGER PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    scope           TEXT NOT NULL CHECK (scope IN ('imap', 'smtp', 'both')),
    password_hash   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX app_passwords_account ON app_passwords(account_id);

-- Signed-in portal sessions. The cookie holds a random 256-bit id; only its SHA-256
-- is stored, so a copy of the database does not let anyone in. `csrf_secret` is the
-- token every form of the session carries.
CREATE TABLE web_sessions (
    id_hash         BLOB PRIMARY KEY,
    account_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    csrf_secret     TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_expiry ON web_sessions(expires_at);
CREATE INDEX web_sessions_account ON web_sessions(account_id);
