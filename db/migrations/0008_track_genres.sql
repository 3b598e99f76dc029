-- The genres the media server's metadata gives a track: recommended tags are the predicted ones it does not carry.
ALTER TABLE tracks ADD COLUMN genres TEXT[] NOT NULL DEFAULT '{}';
