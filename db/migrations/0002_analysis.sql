-- Analysis results on each track, and a record of every track that could not be analyzed.

ALTER TABLE tracks
    ADD COLUMN album_id          TEXT,
    ADD COLUMN year              INTEGER,
    ADD COLUMN track_number      INTEGER,
    ADD COLUMN source_signature  TEXT,             -- cheap change marker from the media server (size:mtime, etag)
    ADD COLUMN tempo_bpm         REAL,             -- beats per minute; NULL when no stable beat was found
    ADD COLUMN tempo_confidence  REAL,             -- 0..1
    ADD COLUMN musical_key       TEXT,             -- C, C#, D, ... B
    ADD COLUMN scale             TEXT CHECK (scale IS NULL OR scale IN ('major', 'minor')),
    ADD COLUMN camelot           TEXT,             -- e.g. 8A
    ADD COLUMN key_confidence    REAL,
    ADD COLUMN energy            REAL,             -- 0..1, see audio/features.py
    ADD COLUMN loudness_lufs     REAL,             -- integrated loudness, ITU-R BS.1770
    ADD COLUMN tags              JSONB,            -- all 50 MSD tag probabilities {tag: p}
    ADD COLUMN moods             JSONB,            -- danceable, aggressive, happy, party, relaxed, sad (0..1)
    ADD COLUMN analysis_model    TEXT,
    ADD COLUMN analysis_version  INTEGER,
    ADD COLUMN analyzed_at       TIMESTAMPTZ,
    ADD COLUMN patches_analyzed  INTEGER,
    ADD COLUMN audio_access      TEXT;             -- 'direct' (file read in place) or 'downloaded'

CREATE INDEX tracks_album_idx ON tracks (album_id);

CREATE TABLE analysis_failures (
    item_id             TEXT PRIMARY KEY,
    album_id            TEXT,
    title               TEXT NOT NULL DEFAULT '',
    artist              TEXT NOT NULL DEFAULT '',
    album               TEXT NOT NULL DEFAULT '',
    file_path           TEXT,
    source_signature    TEXT,
    reason              TEXT NOT NULL,
    analysis_version    INTEGER NOT NULL,
    task_id             TEXT,
    attempts            INTEGER NOT NULL DEFAULT 1,
    failed_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
