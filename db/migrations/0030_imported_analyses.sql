-- Analyses imported from another install's bundle (services/analysis_bundle.py, issue 31), waiting for a track whose
-- file has the same content: an analysis run that finds one takes it instead of running the model. Only rows of the
-- model and analysis version this install runs are imported (the others are refused with the reason).
CREATE TABLE imported_analyses (
    content_fingerprint TEXT PRIMARY KEY,              -- sha256 of the file's bytes (tasks/analysis.py)
    analysis_model      TEXT NOT NULL,
    analysis_version    INTEGER NOT NULL,
    duration_seconds    DOUBLE PRECISION,
    tempo_bpm           REAL,
    tempo_confidence    REAL,
    musical_key         TEXT,
    scale               TEXT,
    camelot             TEXT,
    key_confidence      REAL,
    energy              REAL,
    loudness_lufs       REAL,
    tags                JSONB NOT NULL,
    moods               JSONB NOT NULL,
    patches_analyzed    INTEGER,
    dimensions          INTEGER NOT NULL CHECK (dimensions > 0),
    vector              BYTEA NOT NULL,                -- little-endian float32, `dimensions` values
    imported_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (octet_length(vector) = 4 * dimensions)
);
