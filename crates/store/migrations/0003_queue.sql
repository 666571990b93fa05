-- The outbound queue: submitted mail for other domains, written in the same
-- transaction that accepted the message, delivered by the relay worker.
CREATE TABLE queue (
    id              INTEGER PRIMARY KEY,
    -- The envelope sender (reverse-path); '' is the null sender of a bounce.
    sender          TEXT NOT NULL,
    -- The message as it leaves (trace headers added, Bcc removed).
    raw             BLOB NOT NULL,
    size            INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    -- Unix seconds of the next delivery attempt.
    next_attempt    INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- A worker holds the message until then (a crashed worker's claim runs out).
    claimed_until   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_due ON queue(next_attempt);

-- Recipients still to be delivered; a delivered or permanently failed recipient is
-- removed, and the message with its last recipient.
CREATE TABLE queue_recipients (
    queue_id        INTEGER NOT NULL REFERENCES queue(id) ON DELETE CASCADE,
    address         TEXT NOT NULL,
    last_response   TEXT,
    PRIMARY KEY (queue_id, address)
) WITHOUT ROWID;
