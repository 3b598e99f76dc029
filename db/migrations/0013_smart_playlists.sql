-- Smart playlists: a rule (its canonical text form, discovery/smart_rules.py), an order and a size cap; the tracks
-- it holds are AudioMuse's playlist '<name>_smart' (playlists, source 'smart'), refreshed after each analysis and
-- cleaning run and published to the media server.
CREATE TABLE smart_playlists (
    smart_playlist_id    BIGSERIAL PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    rule                 TEXT NOT NULL,
    order_by             TEXT NOT NULL DEFAULT 'bpm' CHECK (order_by IN ('bpm', 'energy', 'similarity', 'random')),
    seed                 INTEGER NOT NULL DEFAULT 1,
    size_cap             INTEGER NOT NULL DEFAULT 100 CHECK (size_cap BETWEEN 1 AND 5000),
    last_refreshed_at    TIMESTAMPTZ,
    last_matches         INTEGER,          -- tracks the rule matched
    last_count           INTEGER,          -- tracks in the playlist (at most size_cap)
    last_added           INTEGER,
    last_removed         INTEGER,
    last_error           TEXT,
    mediaserver_playlist TEXT,
    published_ids        JSONB NOT NULL DEFAULT '[]',  -- what the media server was last given, in order (the
                                                       -- playlists table loses cleaned tracks by cascade)
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
