-- Several named API tokens (issue 32, 9): one per script or player, each revocable alone. Only a token's SHA-256 is
-- kept. The single token stored before this becomes the one named 'default'.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 60),
    sha256 TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ
);
INSERT INTO api_tokens (name, sha256, created_at)
SELECT 'default', value, updated_at FROM app_settings WHERE key = 'api_token_sha256';
DELETE FROM app_settings WHERE key = 'api_token_sha256';
