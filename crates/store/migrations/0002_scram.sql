-- SCRAM-SHA-256 (RFC 5802, RFC 7677) credentials, derived when the password is set:
-- the server keeps StoredKey and ServerKey, never the password. Accounts created
-- before this migration get them at their next password change.
ALTER TABLE accounts ADD COLUMN scram_salt BLOB;
ALTER TABLE accounts ADD COLUMN scram_iterations INTEGER;
ALTER TABLE accounts ADD COLUMN scram_stored_key BLOB;
ALTER TABLE accounts ADD COLUMN scram_server_key BLOB;
