-- An index update in place (voyager_manager) and the web process's vectors file read the embeddings written since
-- the stored index was built: without an index on created_at each of those reads scanned every embedding (~1 GB of
-- vectors at a million tracks) to find the few hundred written since.
CREATE INDEX embeddings_created_at_idx ON embeddings (created_at);
