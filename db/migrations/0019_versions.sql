-- Versions (discovery/versions.py): the kept copy of each track's recording (files with the same audio) and the id
-- of its song (recordings that are versions of one song). NULL for a track alone in its recording / song, which is
-- most of a library; written by the index build for every indexed track.
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS recording_id TEXT, ADD COLUMN IF NOT EXISTS song_id TEXT;
CREATE INDEX IF NOT EXISTS tracks_recording_idx ON tracks (recording_id) WHERE recording_id IS NOT NULL;
