-- Accounts that may send as any address on submission (the envelope sender and
-- From: need not be their own address or alias): for admins, off by default.
ALTER TABLE accounts ADD COLUMN send_as_any INTEGER NOT NULL DEFAULT 0;
