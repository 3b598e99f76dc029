-- The version of each part of a track's analysis (audio/analyze.py PART_VERSIONS, issue 31): a change to the tempo,
-- key or energy code computes that part again from the decoded audio, without running the model on every track.
-- analysis_version stays the model part's. The rows analysed so far hold each part's first version (a constant
-- default: no table rewrite). Imported analyses carry them too.
ALTER TABLE tracks ADD COLUMN tempo_version INTEGER NOT NULL DEFAULT 1,
                   ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1,
                   ADD COLUMN energy_version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE imported_analyses ADD COLUMN tempo_version INTEGER NOT NULL DEFAULT 1,
                              ADD COLUMN key_version INTEGER NOT NULL DEFAULT 1,
                              ADD COLUMN energy_version INTEGER NOT NULL DEFAULT 1;
-- The Analysis page counts the tracks with an older part on every refresh: through these, only the older ones are
-- read (none, mostly), not a million rows.
CREATE INDEX tracks_tempo_version_idx ON tracks (tempo_version);
CREATE INDEX tracks_key_version_idx ON tracks (key_version);
CREATE INDEX tracks_energy_version_idx ON tracks (energy_version);
