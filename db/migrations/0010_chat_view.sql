-- What the instant-playlist chat's LLM may query: one view of the analyzed tracks, never the tables themselves.
-- The chat's own role (db/chat_queries.py) is granted SELECT on this view only.
CREATE VIEW chat_tracks AS
SELECT t.item_id, t.title, t.artist, t.album, t.album_artist, t.year, t.duration_seconds, t.genres,
       t.tempo_bpm, t.musical_key, t.scale, t.camelot, t.energy, t.loudness_lufs AS loudness,
       (t.moods ->> 'danceable')::real AS danceable, (t.moods ->> 'aggressive')::real AS aggressive,
       (t.moods ->> 'happy')::real AS happy, (t.moods ->> 'party')::real AS party,
       (t.moods ->> 'relaxed')::real AS relaxed, (t.moods ->> 'sad')::real AS sad,
       t.tags
  FROM tracks t
 WHERE t.analyzed_at IS NOT NULL;
