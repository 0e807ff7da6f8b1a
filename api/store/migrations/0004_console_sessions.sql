-- Editorial console sessions (the file store's console-sessions/), so that a browser signed in on
-- one node is signed in on all. Only the hash of the session id is kept, as for API keys.
CREATE TABLE medkb_console_sessions (
    id_sha256 text PRIMARY KEY,
    session json NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX medkb_console_sessions_expiry ON medkb_console_sessions (expires_at);
