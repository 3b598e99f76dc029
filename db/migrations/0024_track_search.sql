-- Keyword search ranks every matching document (ts_rank_cd) before it keeps the best: a tag word matches a large share
-- of a library (126k of 1M tracks in bench/search.py), and fetching those rows from the wide `tracks` table (~2 KB a
-- row: tags, moods, ...) read ~800 MB per search, 340-470 ms at 1M (issue 29). This narrow copy holds each analysed
-- track's search document alone (~200 bytes a row), kept by a trigger after the one that computes the document.
CREATE TABLE track_search (
    item_id         TEXT PRIMARY KEY REFERENCES tracks (item_id) ON DELETE CASCADE,
    search_document tsvector NOT NULL
);

CREATE FUNCTION tracks_track_search() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.analyzed_at IS NULL OR NEW.search_document IS NULL THEN
        DELETE FROM track_search WHERE item_id = NEW.item_id;
    ELSE
        INSERT INTO track_search (item_id, search_document) VALUES (NEW.item_id, NEW.search_document)
        ON CONFLICT (item_id) DO UPDATE SET search_document = EXCLUDED.search_document
            WHERE track_search.search_document IS DISTINCT FROM EXCLUDED.search_document;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tracks_track_search AFTER INSERT OR UPDATE OF title, artist, album, album_artist, tags, genres, analyzed_at
    ON tracks FOR EACH ROW EXECUTE FUNCTION tracks_track_search();

INSERT INTO track_search (item_id, search_document)
SELECT item_id, search_document FROM tracks WHERE analyzed_at IS NOT NULL AND search_document IS NOT NULL;

CREATE INDEX track_search_document_idx ON track_search USING gin (search_document);
