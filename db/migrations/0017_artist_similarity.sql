-- Artist similarity (discovery/artist_similarity.py). The media server's artist id of each track, written by the
-- analysis' upsert (NULL when the server has none: the artist model then derives a stable id from the folded name),
-- and the artist model the worker builds beside the track index of the same name and announces with it.
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS artist_id TEXT;

CREATE TABLE IF NOT EXISTS artist_models (
    name           TEXT PRIMARY KEY,                      -- the track index's name (voyager_indexes.name)
    model          TEXT NOT NULL,                         -- the embedding model
    num_artists    INTEGER NOT NULL,
    num_components INTEGER NOT NULL,
    data           BYTEA NOT NULL,                        -- ArtistModel.to_bytes(): arrays and names (.npz)
    index_data     BYTEA NOT NULL,                        -- the Voyager index over the component means
    sha256         TEXT NOT NULL,                         -- of data then index_data
    built_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
