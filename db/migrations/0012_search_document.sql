-- Keyword search ranked by PostgreSQL: a full-text document per track (title weighted A; artist, album and album
-- artist B; the five strongest tags (probability at least 0.1) and the server's genres C) kept up to date by a trigger, with a GIN index. Where
-- the server has the pg_trgm extension (contrib; the embedded PostgreSQL has none) it is enabled for fuzzy matches of
-- titles and artists, with its own index; without it keyword search is full-text only and says so.
ALTER TABLE tracks ADD COLUMN search_document tsvector;

CREATE FUNCTION tracks_search_document() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_document :=
        setweight(to_tsvector('english', coalesce(NEW.title, '')), 'A')
        || setweight(to_tsvector('english', concat_ws(' ', NEW.artist, NEW.album, NEW.album_artist)), 'B')
        || setweight(to_tsvector('english', concat_ws(' ',
               (SELECT string_agg(replace(e.key, '-', ' '), ' ')
                  FROM (SELECT key FROM jsonb_each_text(coalesce(NEW.tags, '{}'::jsonb))
                         WHERE value::float8 >= 0.1 ORDER BY value::float8 DESC, key LIMIT 5) AS e),
               array_to_string(NEW.genres, ' '))), 'C');
    RETURN NEW;
END $$;

CREATE TRIGGER tracks_search_document BEFORE INSERT OR UPDATE OF title, artist, album, album_artist, tags, genres
    ON tracks FOR EACH ROW EXECUTE FUNCTION tracks_search_document();

UPDATE tracks SET title = title;
CREATE INDEX tracks_search_document_idx ON tracks USING gin (search_document);

DO $$
BEGIN
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'pg_trgm is not available (%): keyword search is full-text only', SQLERRM;
    END;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX tracks_names_trgm_idx ON tracks USING gin ((lower(title || '' '' || artist)) gin_trgm_ops)';
    END IF;
END $$;
