-- CLAP audio embeddings (text search with CLAP), one per track, with the audio model that made it: a track whose
-- row names another model is embedded again.
CREATE TABLE clap_embeddings (
    item_id    TEXT PRIMARY KEY REFERENCES tracks(item_id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    dimensions INTEGER NOT NULL CHECK (dimensions > 0),
    vector     BYTEA NOT NULL CHECK (octet_length(vector) = 4 * dimensions),  -- little-endian float32
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX clap_embeddings_model ON clap_embeddings (model);
