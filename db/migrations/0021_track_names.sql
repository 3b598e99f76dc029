-- The song pickers and the keyword fallback of text search match a typed fragment anywhere in a title, artist or
-- album, case and accents ignored (issue 29). Without pg_trgm (the embedded PostgreSQL has none) that is a scan,
-- and scanning `tracks` (wide rows: tags, search document, ...) folding every name on the way took ~2 s at 300k
-- tracks. This narrow copy keeps each analysed track's names folded once, so the scan reads ~100 bytes a track.
CREATE TABLE track_names (
    item_id      TEXT PRIMARY KEY REFERENCES tracks (item_id) ON DELETE CASCADE,
    title_fold   TEXT NOT NULL,
    artist_fold  TEXT NOT NULL,
    album_fold   TEXT NOT NULL,
    title_length INTEGER NOT NULL
);

CREATE FUNCTION tracks_track_names() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.analyzed_at IS NULL THEN
        DELETE FROM track_names WHERE item_id = NEW.item_id;
    ELSE
        INSERT INTO track_names (item_id, title_fold, artist_fold, album_fold, title_length)
        VALUES (NEW.item_id, audiomuse_fold(NEW.title), audiomuse_fold(NEW.artist),
                audiomuse_fold(coalesce(NEW.album, '')), length(NEW.title))
        ON CONFLICT (item_id) DO UPDATE
            SET title_fold = EXCLUDED.title_fold, artist_fold = EXCLUDED.artist_fold,
                album_fold = EXCLUDED.album_fold, title_length = EXCLUDED.title_length
            WHERE (track_names.title_fold, track_names.artist_fold, track_names.album_fold,
                   track_names.title_length)
                  IS DISTINCT FROM (EXCLUDED.title_fold, EXCLUDED.artist_fold, EXCLUDED.album_fold,
                                    EXCLUDED.title_length);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tracks_track_names AFTER INSERT OR UPDATE OF title, artist, album, analyzed_at
    ON tracks FOR EACH ROW EXECUTE FUNCTION tracks_track_names();

INSERT INTO track_names (item_id, title_fold, artist_fold, album_fold, title_length)
SELECT item_id, audiomuse_fold(title), audiomuse_fold(artist), audiomuse_fold(coalesce(album, '')), length(title)
  FROM tracks WHERE analyzed_at IS NOT NULL;

-- A title typed from its start is found through this index; a fragment inside a name is a scan of the narrow table.
CREATE INDEX track_names_title_prefix ON track_names (title_fold text_pattern_ops);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX track_names_title_trgm ON track_names USING gin (title_fold gin_trgm_ops);
        CREATE INDEX track_names_artist_trgm ON track_names USING gin (artist_fold gin_trgm_ops);
        CREATE INDEX track_names_album_trgm ON track_names USING gin (album_fold gin_trgm_ops);
    END IF;
END
$$;
