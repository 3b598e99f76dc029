-- Two passes over a million-entry JSONB id map took 20 of the 32 s between the end of an analysis run and its 1,000
-- new tracks being served (issue 29): the worker's diff of the embeddings against the index, and the web server's
-- hash of each position's catalogue row. Both now read narrow tables that the planner can join with real statistics.

-- The held positions of each stored index (voyager_indexes.item_ids without the deleted ones), written in the same
-- transactions as item_ids: a whole store inserts them all, an update in place only its deleted and added positions.
CREATE TABLE voyager_index_positions (
    name     TEXT NOT NULL REFERENCES voyager_indexes (name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    item_id  TEXT NOT NULL,
    PRIMARY KEY (name, position)
);
CREATE INDEX voyager_index_positions_item_idx ON voyager_index_positions (name, item_id) INCLUDE (position);

INSERT INTO voyager_index_positions (name, position, item_id)
SELECT v.name, (s.n - 1)::int, s.item_id
  FROM voyager_indexes v CROSS JOIN LATERAL jsonb_array_elements_text(v.item_ids) WITH ORDINALITY AS s(item_id, n)
 WHERE s.item_id <> '';

-- A 64-bit hash of each track's catalogue row (db/tracks.py CATALOG_COLUMNS, NULL and empty told apart; a test
-- changes each column and checks the hash follows), kept by triggers: equal hashes, same row. Floats are written
-- out exactly whatever the writing session's extra_float_digits.
CREATE FUNCTION track_catalog_hash(t tracks) RETURNS BIGINT LANGUAGE sql IMMUTABLE SET extra_float_digits = 3 AS $$
    SELECT hashtextextended(ROW(t.item_id, t.title, t.artist, t.album, t.duration_seconds, t.tempo_bpm, t.camelot,
                                t.energy, t.moods, t.genres, t.file_path, t.library, t.recording_id,
                                t.song_id)::text, 0)
$$;

CREATE TABLE track_catalog_hashes (
    item_id TEXT PRIMARY KEY REFERENCES tracks (item_id) ON DELETE CASCADE ON UPDATE CASCADE,
    hash    BIGINT NOT NULL
);

-- Statement triggers with transition tables: a COPY of a million tracks hashes them in one INSERT, not a million.
CREATE FUNCTION tracks_catalog_hashes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO track_catalog_hashes (item_id, hash)
    SELECT n.item_id, track_catalog_hash(n) FROM changed_tracks n
    ON CONFLICT (item_id) DO UPDATE SET hash = EXCLUDED.hash
     WHERE track_catalog_hashes.hash IS DISTINCT FROM EXCLUDED.hash;
    RETURN NULL;
END $$;

CREATE TRIGGER tracks_catalog_hashes_insert AFTER INSERT ON tracks
    REFERENCING NEW TABLE AS changed_tracks FOR EACH STATEMENT EXECUTE FUNCTION tracks_catalog_hashes();
CREATE TRIGGER tracks_catalog_hashes_update AFTER UPDATE ON tracks
    REFERENCING NEW TABLE AS changed_tracks FOR EACH STATEMENT EXECUTE FUNCTION tracks_catalog_hashes();

INSERT INTO track_catalog_hashes (item_id, hash) SELECT t.item_id, track_catalog_hash(t) FROM tracks t;
