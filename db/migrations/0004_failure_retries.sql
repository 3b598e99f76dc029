-- Tell transient analysis failures (timeouts, network, a worker that died) from permanent ones (an undecodable
-- file): transient ones are tried again on later runs, up to a few attempts.
ALTER TABLE analysis_failures ADD COLUMN retryable BOOLEAN NOT NULL DEFAULT false;
