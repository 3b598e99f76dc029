-- The chat's fallback (no LLM) ranks the whole library by a score of a few tag probabilities, moods and energy, and
-- PostgreSQL read every wide `tracks` row for it (~1.7 KB a row, 1.2 KB of it the tag object): 524 ms a request at
-- 1M tracks (issue 29). This narrow copy holds only what the score reads (~0.5 KB a row), kept by a trigger, so the
-- fallback finds its best rows here first and asks the chat view for those alone. Values are those the chat view
-- gives — tag probabilities as double precision, moods as real — so the two compute the same scores, bit for bit.
CREATE TABLE chat_score_tags (
    position INTEGER PRIMARY KEY,  -- 1-based: the element of chat_scores.tags that holds this tag
    tag      TEXT NOT NULL UNIQUE
);

-- the analysis's 50 tags (audio/musicnn.py MSD_TAGS; a test compares them)
INSERT INTO chat_score_tags (position, tag)
SELECT n, tag FROM unnest(ARRAY[
    'rock', 'pop', 'alternative', 'indie', 'electronic', 'female vocalists', 'dance', '00s', 'alternative rock',
    'jazz', 'beautiful', 'metal', 'chillout', 'male vocalists', 'classic rock', 'soul', 'indie rock', 'Mellow',
    'electronica', '80s', 'folk', '90s', 'chill', 'instrumental', 'punk', 'oldies', 'blues', 'hard rock', 'ambient',
    'acoustic', 'experimental', 'female vocalist', 'guitar', 'Hip-Hop', '70s', 'party', 'country', 'easy listening',
    'sexy', 'catchy', 'funk', 'electro', 'heavy metal', 'Progressive rock', '60s', 'rnb', 'indie pop', 'sad',
    'House', 'happy']) WITH ORDINALITY AS t(tag, n);

CREATE TABLE chat_scores (
    item_id    TEXT PRIMARY KEY REFERENCES tracks (item_id) ON DELETE CASCADE,
    tags       DOUBLE PRECISION[] NOT NULL,  -- in chat_score_tags order; NULL where the track has no such tag
    danceable  REAL, aggressive REAL, happy REAL, party REAL, relaxed REAL, sad REAL,
    energy     REAL,
    tempo_bpm  REAL
);

CREATE FUNCTION chat_score_tag_values(tags JSONB) RETURNS DOUBLE PRECISION[] LANGUAGE sql STABLE AS $$
    SELECT ARRAY(SELECT (tags ->> s.tag)::float FROM chat_score_tags s ORDER BY s.position)
$$;

CREATE FUNCTION tracks_chat_scores() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.analyzed_at IS NULL THEN
        DELETE FROM chat_scores WHERE item_id = NEW.item_id;
    ELSE
        INSERT INTO chat_scores (item_id, tags, danceable, aggressive, happy, party, relaxed, sad, energy, tempo_bpm)
        VALUES (NEW.item_id, chat_score_tag_values(NEW.tags),
                (NEW.moods ->> 'danceable')::real, (NEW.moods ->> 'aggressive')::real, (NEW.moods ->> 'happy')::real,
                (NEW.moods ->> 'party')::real, (NEW.moods ->> 'relaxed')::real, (NEW.moods ->> 'sad')::real,
                NEW.energy, NEW.tempo_bpm)
        ON CONFLICT (item_id) DO UPDATE SET
            tags = EXCLUDED.tags, danceable = EXCLUDED.danceable, aggressive = EXCLUDED.aggressive,
            happy = EXCLUDED.happy, party = EXCLUDED.party, relaxed = EXCLUDED.relaxed, sad = EXCLUDED.sad,
            energy = EXCLUDED.energy, tempo_bpm = EXCLUDED.tempo_bpm;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tracks_chat_scores AFTER INSERT OR UPDATE OF tags, moods, energy, tempo_bpm, analyzed_at
    ON tracks FOR EACH ROW EXECUTE FUNCTION tracks_chat_scores();

INSERT INTO chat_scores (item_id, tags, danceable, aggressive, happy, party, relaxed, sad, energy, tempo_bpm)
SELECT item_id, chat_score_tag_values(tags),
       (moods ->> 'danceable')::real, (moods ->> 'aggressive')::real, (moods ->> 'happy')::real,
       (moods ->> 'party')::real, (moods ->> 'relaxed')::real, (moods ->> 'sad')::real, energy, tempo_bpm
  FROM tracks WHERE analyzed_at IS NOT NULL;
