-- Pinned playlists (issue 28): a clustering run leaves a pinned playlist of its own alone, here and on the media
-- server (its songs, its name, its media-server id), and gives a new cluster that would take its name another one.
-- NULL: not pinned. Only clustering's playlists (source 'clustering') are pinned so far.
ALTER TABLE playlists ADD COLUMN IF NOT EXISTS pinned_at TIMESTAMPTZ;
