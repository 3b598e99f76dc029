-- Logging out ends the session on the server (issue 32, 9): a login cookie carries a random session id, and the id of
-- a session that logged out is kept here until the cookie could no longer be valid anyway (30 days), so a copy of
-- the cookie replayed after the logout is refused.
CREATE TABLE ended_sessions (
    sid TEXT PRIMARY KEY,
    ended_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ended_sessions_ended_at_idx ON ended_sessions (ended_at);
