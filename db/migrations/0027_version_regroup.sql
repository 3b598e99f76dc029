-- Version groups are made per song key (discovery/versions.py), so an index update in place regroups only the keys
-- whose tracks changed (issue 29: regrouping every shared key took ~7 s of a 1,000-track update at 1M). This table
-- holds those keys until a regroup answers them: the keys of tracks an update added, re-analysed or removed, keys
-- stored for new or renamed titles (db/versions.py), and — by the trigger below — the key a track left behind (a
-- rename, a deleted row, a changed duration, path or file). A NULL key asks for every key to be regrouped.
CREATE TABLE version_regroup (
    seq           BIGSERIAL PRIMARY KEY,
    song_key_hash BIGINT
);

CREATE FUNCTION tracks_version_regroup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.song_key_hash IS NOT NULL AND (
        TG_OP = 'DELETE' OR NEW.title IS DISTINCT FROM OLD.title OR NEW.artist IS DISTINCT FROM OLD.artist
        OR NEW.duration_seconds IS DISTINCT FROM OLD.duration_seconds OR NEW.file_path IS DISTINCT FROM OLD.file_path
        OR NEW.source_signature IS DISTINCT FROM OLD.source_signature) THEN
        INSERT INTO version_regroup (song_key_hash) VALUES (OLD.song_key_hash);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tracks_version_regroup
    AFTER UPDATE OF title, artist, duration_seconds, file_path, source_signature OR DELETE ON tracks
    FOR EACH ROW EXECUTE FUNCTION tracks_version_regroup();

CREATE INDEX tracks_song_key_hash_idx ON tracks (song_key_hash) WHERE song_key_hash IS NOT NULL;

-- what changed before this table existed is not known: the first regroup takes every key
INSERT INTO version_regroup (song_key_hash) VALUES (NULL);
