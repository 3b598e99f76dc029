-- Playlist matching: the user's own playlists read from the media server (with a hash of their membership), a
-- profile per playlist (recomputed only when its membership, the analysis version, the model or the profile code
-- changed), and the suggestions made for new songs (a rejected one is never suggested again).
CREATE TABLE user_playlists (
    playlist_id  TEXT PRIMARY KEY,                 -- the media server's id
    name         TEXT NOT NULL,
    item_ids     JSONB NOT NULL DEFAULT '[]',      -- its analyzed songs, in order
    content_hash TEXT NOT NULL,
    generated    BOOLEAN NOT NULL DEFAULT false,   -- made by AudioMuse (_automatic, _instant, _smart): not profiled
    fetched_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE playlist_profiles (
    playlist_id      TEXT PRIMARY KEY REFERENCES user_playlists (playlist_id) ON DELETE CASCADE,
    profile_kind     TEXT NOT NULL,                -- what the profile holds (see discovery/playlist_match.py)
    model            TEXT NOT NULL,
    analysis_version INTEGER NOT NULL,
    code_version     INTEGER NOT NULL,
    content_hash     TEXT NOT NULL,
    members          INTEGER NOT NULL,
    profile          JSONB NOT NULL,               -- spread, tempo and energy ranges
    centroid         BYTEA NOT NULL,               -- float32 little-endian
    tag_profile      BYTEA NOT NULL,
    computed_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE playlist_suggestions (
    item_id     TEXT NOT NULL REFERENCES tracks (item_id) ON DELETE CASCADE,
    playlist_id TEXT NOT NULL REFERENCES user_playlists (playlist_id) ON DELETE CASCADE,
    score       REAL NOT NULL,
    reasons     JSONB NOT NULL DEFAULT '[]',
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'accepted', 'rejected')),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    decided_at  TIMESTAMPTZ,
    PRIMARY KEY (item_id, playlist_id)
);
CREATE INDEX playlist_suggestions_open ON playlist_suggestions (created_at DESC) WHERE status = 'open';
