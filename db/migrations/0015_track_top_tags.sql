-- Each track's three strongest tags (probability at least 0.1, lower-case) and its strongest mood as columns, kept
-- by the search-document trigger: smart playlist rules and the search facets read them instead of unpacking the
-- 50 tag probabilities of every row (20 rules at 100k tracks took 12.9 s that way; see bench/RESULTS.md).
ALTER TABLE tracks ADD COLUMN top_tags TEXT[] NOT NULL DEFAULT '{}', ADD COLUMN top_mood TEXT;

CREATE OR REPLACE FUNCTION tracks_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_document :=
        setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', concat_ws(' ', NEW.artist, NEW.album, NEW.album_artist)), 'B')
        || setweight(to_tsvector('english', concat_ws(' ',
               (SELECT string_agg(replace(e.key, '-', ' '), ' ')
                  FROM (SELECT key FROM jsonb_each_text(coalesce(NEW.tags, '{}'::jsonb))
                         WHERE value::float8 >= 0.1 ORDER BY value::float8 DESC, key LIMIT 5) AS e),
               array_to_string(NEW.genres, ' '))), 'C');
    NEW.top_tags := ARRAY(SELECT lower(key) FROM jsonb_each_text(coalesce(NEW.tags, '{}'::jsonb))
                           WHERE value::float8 >= 0.1 ORDER BY value::float8 DESC, key LIMIT 3);
    NEW.top_mood := (SELECT lower(key) FROM jsonb_each_text(coalesce(NEW.moods, '{}'::jsonb))
                      ORDER BY value::float8 DESC, key LIMIT 1);
    RETURN NEW;
END $$;

DROP TRIGGER tracks_search_document ON tracks;
CREATE TRIGGER tracks_search_document
    BEFORE INSERT OR UPDATE OF title, artist, album, album_artist, tags, moods, genres
    ON tracks FOR EACH ROW EXECUTE FUNCTION tracks_search_document();

UPDATE tracks SET title = title;
CREATE INDEX tracks_top_tags_idx ON tracks USING gin (top_tags);
