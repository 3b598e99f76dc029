-- Fast analysis (issue 31): a track analysed with every n-th 3-s patch through the model records n (1: every
-- patch). Its embedding and tags are of the same network, so the index takes both kinds; a later run with
-- {"upgrade_fast": true} analyses the fast ones again with every patch. Bundles carry it.
ALTER TABLE tracks ADD COLUMN patch_stride INTEGER NOT NULL DEFAULT 1 CHECK (patch_stride >= 1);
ALTER TABLE imported_analyses ADD COLUMN patch_stride INTEGER NOT NULL DEFAULT 1 CHECK (patch_stride >= 1);
-- the Analysis page counts the fast ones on every refresh
CREATE INDEX tracks_fast_idx ON tracks (item_id) WHERE patch_stride > 1;
