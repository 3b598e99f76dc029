-- An index updated in place is stored as what changed since the index was last stored whole (issue 29): rewriting a
-- million-track index (~1 GB of chunks) took ~40 s of every update, while 1,000 new tracks are 800 KB. The chunks
-- are the base index (its sha256 in base_sha256); each delta, applied in `seq` order, marks positions deleted and
-- adds vectors at the positions from first_position on. voyager_indexes.sha256 and item_ids describe the index
-- with every delta applied (the bytes of the updater's copy). A whole store deletes the row, and the deltas with it.
ALTER TABLE voyager_indexes ADD COLUMN base_sha256 TEXT;
UPDATE voyager_indexes SET base_sha256 = sha256;  -- what is stored now is a whole index

CREATE TABLE voyager_index_deltas (
    name           TEXT NOT NULL REFERENCES voyager_indexes (name) ON DELETE CASCADE,
    seq            INTEGER NOT NULL,
    deleted        INTEGER[] NOT NULL,      -- positions marked deleted
    first_position INTEGER NOT NULL,        -- the added vectors' first position (the others follow it)
    dimensions     INTEGER NOT NULL,
    vectors        BYTEA NOT NULL,          -- the added vectors, float32 little-endian, one row after another
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (name, seq)
);
