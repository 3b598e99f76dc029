-- The music map's 2-D coordinates, computed by the map_projection job: one row per projection name, the item ids
-- and their coordinates in the same order (float32 x, y pairs, little-endian).
CREATE TABLE map_projections (
    name            TEXT PRIMARY KEY,
    model           TEXT NOT NULL,
    method          TEXT NOT NULL CHECK (method IN ('umap', 'pca')),
    params          JSONB NOT NULL DEFAULT '{}',
    fallback_reason TEXT,
    track_count     INTEGER NOT NULL,
    full_count      INTEGER NOT NULL,   -- tracks mapped by the last full build
    placed_count    INTEGER NOT NULL DEFAULT 0,  -- tracks placed since, without a full build
    item_ids        JSONB NOT NULL,
    coords          BYTEA NOT NULL,
    built_at        TIMESTAMPTZ NOT NULL DEFAULT now(),  -- the last full build
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (octet_length(coords) = 8 * track_count)
);
