-- A smaller store (measured with `mailroom-bench store-size`).
--
-- 1. The FTS5 trigram index keeps no positions (detail=none) and no per-row token
--    counts (columnsize=0): positions were most of its size, and nothing needs them.
--    A trigram index without positions cannot match a phrase by itself, so SEARCH
--    BODY asks it for the rows holding every trigram of the needle ("abc" AND "bcd"
--    AND ...) and checks those rows' text with instr(). The text itself stays in
--    the table (it is the one stored copy of the decoded, lower-cased body text;
--    short needles scan it).
-- 2. content_headers.value_folded is NULL when it equals lower(value), SQLite's
--    ASCII-only lower-casing, which is the case for every value without non-ASCII
--    capitals. Search compares coalesce(value_folded, lower(value)).

-- The trigger names content_text; it is dropped while the table is replaced.
DROP TRIGGER messages_unref;

CREATE VIRTUAL TABLE content_text_v7 USING fts5(
    body, tokenize = 'trigram', detail = none, columnsize = 0
);
INSERT INTO content_text_v7 (rowid, body) SELECT rowid, body FROM content_text;
DROP TABLE content_text;
ALTER TABLE content_text_v7 RENAME TO content_text;
INSERT INTO content_text (content_text) VALUES ('optimize');

CREATE TRIGGER messages_unref AFTER DELETE ON messages BEGIN
    UPDATE contents SET refcount = refcount - 1 WHERE id = OLD.content_id;
    DELETE FROM content_text WHERE rowid = OLD.content_id
        AND (SELECT refcount FROM contents WHERE id = OLD.content_id) = 0;
    DELETE FROM contents WHERE id = OLD.content_id AND refcount = 0;
END;

CREATE TABLE content_headers_v7 (
    content_id      INTEGER NOT NULL REFERENCES contents(id) ON DELETE CASCADE,
    position        INTEGER NOT NULL,
    name            TEXT NOT NULL,
    value           TEXT NOT NULL,
    -- The value lower-cased (Unicode) when that differs from lower(value).
    value_folded    TEXT,
    PRIMARY KEY (content_id, position)
) WITHOUT ROWID;
INSERT INTO content_headers_v7 (content_id, position, name, value, value_folded)
    SELECT content_id, position, name, value,
           CASE WHEN value_folded = lower(value) THEN NULL ELSE value_folded END
    FROM content_headers;
DROP TABLE content_headers;
ALTER TABLE content_headers_v7 RENAME TO content_headers;
CREATE INDEX content_headers_name ON content_headers(name, content_id);
