-- Blocklists and scope (discovery/exclusions.py): the media-server library each track was listed in (a Jellyfin,
-- Emby or Navidrome library, a Lyrion virtual library, the top-level folder of a local music folder), written by the
-- analysis for every track of an album it lists (also unchanged ones, so one run fills it in); NULL where the
-- server cannot tell (MPD) or the track was not listed since. Requests can be scoped to libraries by it.
ALTER TABLE tracks ADD COLUMN IF NOT EXISTS library TEXT;
