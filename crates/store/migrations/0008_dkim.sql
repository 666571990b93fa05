-- DKIM signing keys (RFC 6376, RFC 8463) per local domain and selector. A domain may
-- have several active keys at once (an RSA and an Ed25519 one, as RFC 8463 §4
-- recommends); every active key signs. `private_key` is the PKCS#8 DER document;
-- `public_key` is what the DNS record's p= tag publishes: the DER
-- SubjectPublicKeyInfo for RSA, the raw 32-byte key for Ed25519 (RFC 8463 §4.2).
-- AUTOINCREMENT: an id is never reused, so the signer's cache can tell a replaced
-- key from the old one by its id.
CREATE TABLE dkim_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id    INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    selector     TEXT NOT NULL,
    algorithm    TEXT NOT NULL CHECK (algorithm IN ('rsa-sha256', 'ed25519-sha256')),
    private_key  BLOB NOT NULL,
    public_key   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    active       INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX dkim_keys_selector ON dkim_keys(domain_id, selector COLLATE NOCASE);
