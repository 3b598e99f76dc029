-- Case- and accent-insensitive search of titles and artists for the song pickers.
-- audiomuse_fold() needs no extension (the embedded PostgreSQL ships without contrib modules); where pg_trgm is
-- available, trigram indexes make the substring search fast on large libraries.
CREATE OR REPLACE FUNCTION audiomuse_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    AS $$ SELECT lower(translate($1,
        'ÀÁÂÃÄÅĀĂĄàáâãäåāăąÇĆČçćčĎďÈÉÊËĒĖĘĚèéêëēėęěĞğÌÍÎÏĪĮİìíîïīįıŁłÑŃŇñńňÒÓÔÕÖØŌŐòóôõöøōőŔŘŕřŚŠŞśšşŤťÙÚÛÜŪŮŰŲùúûüūůűųÝŸýÿŹŻŽźżž',
        'AAAAAAAAAaaaaaaaaaCCCcccDdEEEEEEEEeeeeeeeeGgIIIIIIIiiiiiiiLlNNNnnnOOOOOOOOooooooooRRrrSSSsssTtUUUUUUUUuuuuuuuuYYyyZZZzzz'))
    $$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
            CREATE INDEX tracks_title_trgm ON tracks USING gin (audiomuse_fold(title) gin_trgm_ops);
            CREATE INDEX tracks_artist_trgm ON tracks USING gin (audiomuse_fold(artist) gin_trgm_ops);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'no right to create pg_trgm: track search works without its index';
        END;
    ELSE
        RAISE NOTICE 'pg_trgm is not available: track search works without its index';
    END IF;
END
$$;
