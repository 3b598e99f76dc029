-- An attempt marker (written when a track's analysis starts) stays open until the track is saved or its failure
-- recorded. While the task that opened it is alive, the track is being analyzed, not failed; a marker left open by
-- a dead task is the record of a crash.
ALTER TABLE analysis_failures ADD COLUMN attempt_open BOOLEAN NOT NULL DEFAULT false;
