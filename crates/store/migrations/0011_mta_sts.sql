-- MTA-STS policies (RFC 8461) of recipient domains, as the relay fetched them from
-- https://mta-sts.<domain>/.well-known/mta-sts.txt. Kept across restarts: RFC 8461
-- §5.1 relies on the cached policy to refuse a downgrade by an attacker who hides
-- the TXT record or the policy host. The policy text is stored as served and parsed
-- again on use (mailroom-smtp owns the parser).
CREATE TABLE mta_sts_policies (
    domain          TEXT PRIMARY KEY COLLATE NOCASE,
    -- The `id=` of the `_mta-sts` TXT record the policy was fetched for.
    policy_id       TEXT NOT NULL,
    policy          TEXT NOT NULL,
    fetched_at      INTEGER NOT NULL,
    -- fetched_at + the policy's max_age (Unix seconds): unusable after it.
    expires_at      INTEGER NOT NULL
);
