-- The first schema: library, embeddings, the stored nearest-neighbour index, tasks, playlists, schedules,
-- and server-side application settings. Later issues add columns through new numbered files.

-- One row per media-server track. Analysis results are added as columns by later migrations.
CREATE TABLE tracks (
    item_id             TEXT PRIMARY KEY,              -- the media server's id for the track
    title               TEXT NOT NULL DEFAULT '',
    artist              TEXT NOT NULL DEFAULT '',
    album               TEXT NOT NULL DEFAULT '',
    album_artist        TEXT NOT NULL DEFAULT '',
    file_path           TEXT,
    duration_seconds    DOUBLE PRECISION CHECK (duration_seconds IS NULL OR duration_seconds >= 0),
    content_fingerprint TEXT,                          -- hash of the audio content, to skip unchanged tracks
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One vector per track and model (musicnn now; CLAP and later model versions beside it).
CREATE TABLE embeddings (
    item_id    TEXT NOT NULL REFERENCES tracks (item_id) ON DELETE CASCADE,
    model      TEXT NOT NULL,
    dimensions INTEGER NOT NULL CHECK (dimensions > 0),
    vector     BYTEA NOT NULL,                         -- little-endian float32, `dimensions` values
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (item_id, model),
    CHECK (octet_length(vector) = 4 * dimensions)
);

-- A serialized Voyager index, stored in chunks so a large one fits comfortably in BYTEA values.
CREATE TABLE voyager_indexes (
    name        TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    space       TEXT NOT NULL,
    dimensions  INTEGER NOT NULL,
    num_items   INTEGER NOT NULL,
    item_ids    JSONB NOT NULL,                        -- position i holds the item_id of Voyager id i
    byte_size   BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    built_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE voyager_index_chunks (
    name     TEXT NOT NULL REFERENCES voyager_indexes (name) ON DELETE CASCADE,
    chunk_no INTEGER NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (name, chunk_no)
);

-- Durable state of every RQ job we start. task_id equals the RQ job id.
CREATE TABLE task_status (
    task_id        TEXT PRIMARY KEY,
    parent_task_id TEXT REFERENCES task_status (task_id) ON DELETE CASCADE,
    task_type      TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('PENDING', 'STARTED', 'PROGRESS', 'SUCCESS', 'FAILURE', 'REVOKED')),
    progress       SMALLINT NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    phase          TEXT NOT NULL DEFAULT '',
    current_item   INTEGER,
    total_items    INTEGER,
    message        TEXT NOT NULL DEFAULT '',
    log            JSONB NOT NULL DEFAULT '[]'::jsonb,  -- the last TASK_LOG_LINES entries
    result         JSONB,                              -- summary written when the task ends
    error          TEXT,                               -- traceback summary or reason for FAILURE
    params         JSONB NOT NULL DEFAULT '{}'::jsonb,
    worker_name    TEXT,
    worker_host    TEXT,
    worker_pid     INTEGER,
    worker_proc_started DOUBLE PRECISION,          -- process start time, so a reused pid is not mistaken for it
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at     TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at    TIMESTAMPTZ
);
CREATE INDEX task_status_parent_idx ON task_status (parent_task_id);
CREATE INDEX task_status_main_recent_idx ON task_status (created_at DESC) WHERE parent_task_id IS NULL;
-- The one-at-a-time guard: at most one unfinished main task of each type, enforced by the database itself.
CREATE UNIQUE INDEX task_status_one_active_main_per_type ON task_status (task_type)
    WHERE parent_task_id IS NULL AND status IN ('PENDING', 'STARTED', 'PROGRESS');

-- Playlists AudioMuse made, and where they were pushed.
CREATE TABLE playlists (
    playlist_id          BIGSERIAL PRIMARY KEY,
    name                 TEXT NOT NULL,
    source               TEXT NOT NULL,               -- clustering, similar, path, alchemy, fingerprint, chat
    mediaserver_playlist TEXT,                        -- the media server's id once pushed
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (name, source)
);

CREATE TABLE playlist_tracks (
    playlist_id BIGINT NOT NULL REFERENCES playlists (playlist_id) ON DELETE CASCADE,
    position    INTEGER NOT NULL CHECK (position >= 0),
    item_id     TEXT NOT NULL REFERENCES tracks (item_id) ON DELETE CASCADE,
    PRIMARY KEY (playlist_id, position)
);

-- Cron-style schedules for recurring tasks.
CREATE TABLE cron_schedules (
    schedule_id BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    task_type   TEXT NOT NULL,
    cron_expr   TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT false,
    params      JSONB NOT NULL DEFAULT '{}'::jsonb,
    last_run_at TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Server-side settings the UI can change (admin password hash, generated session key, later media-server
-- credentials). Values that are secrets are stored hashed or are never sent back to a page.
CREATE TABLE app_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
