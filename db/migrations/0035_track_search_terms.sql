-- Keyword search ranked every document that holds a query word before it kept the best (ts_rank_cd over ~126k
-- documents for a tag word at 1M tracks: ~200 ms of CPU, issue 29). This table is an index ordered by rank: one row
-- per word of each analysed track's search document, with the word's own rank in that document, so the best
-- documents for a word are the first entries of an index and a query of several words adds up a few lists.
--
-- A word's rank is ts_rank_cd(document, word, 0): for a single word every occurrence is a cover of its own, so it is
-- the sum of its occurrences' weights (A 1.0 title, B 0.4 artist and album, C 0.2 tags and genres; D 0.1).
-- Kept by a trigger on track_search; the delete finds its rows by (word, rank, item_id) through the one index.
-- Writers of track_search wait for this migration (a worker of the version before it must not write in between).
LOCK TABLE track_search IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE track_search_terms (
    lexeme  TEXT NOT NULL,
    rank    REAL NOT NULL,
    item_id TEXT NOT NULL
);

CREATE FUNCTION search_term_rank(weights TEXT[]) RETURNS REAL LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sum(CASE w WHEN 'A' THEN 1.0 WHEN 'B' THEN 0.4 WHEN 'C' THEN 0.2 ELSE 0.1 END)::real
      FROM unnest(coalesce(weights, '{D}')) AS w
$$;

CREATE FUNCTION track_search_terms_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM track_search_terms t USING unnest(OLD.search_document) AS u
         WHERE t.lexeme = u.lexeme AND t.rank = search_term_rank(u.weights) AND t.item_id = OLD.item_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO track_search_terms (lexeme, rank, item_id)
        SELECT u.lexeme, search_term_rank(u.weights), NEW.item_id FROM unnest(NEW.search_document) AS u;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION track_search_terms_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE track_search_terms;
    RETURN NULL;
END $$;

INSERT INTO track_search_terms (lexeme, rank, item_id)
SELECT u.lexeme, search_term_rank(u.weights), s.item_id FROM track_search s CROSS JOIN LATERAL unnest(s.search_document) AS u;

CREATE UNIQUE INDEX track_search_terms_rank_idx ON track_search_terms (lexeme, rank DESC, item_id);

CREATE TRIGGER track_search_terms_sync AFTER INSERT OR DELETE ON track_search
    FOR EACH ROW EXECUTE FUNCTION track_search_terms_sync();
CREATE TRIGGER track_search_terms_update AFTER UPDATE ON track_search
    FOR EACH ROW WHEN (OLD.search_document IS DISTINCT FROM NEW.search_document OR OLD.item_id <> NEW.item_id)
    EXECUTE FUNCTION track_search_terms_sync();
CREATE TRIGGER track_search_terms_truncate AFTER TRUNCATE ON track_search
    FOR EACH STATEMENT EXECUTE FUNCTION track_search_terms_truncate();
