-- API keys (the file store's keys.json), shared by every node. Only sha256(secret) is kept.
CREATE TABLE medkb_keys (
    id text PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL,
    created_at text NOT NULL,
    revoked_at text,
    secret_sha256 text NOT NULL UNIQUE
);
-- At most one active key per name, however many nodes create keys at once.
CREATE UNIQUE INDEX medkb_keys_active_name ON medkb_keys (name) WHERE revoked_at IS NULL;
-- Keys are revoked, never deleted: the audit log names them.
CREATE TRIGGER medkb_keys_never_deleted BEFORE DELETE ON medkb_keys
    FOR EACH ROW EXECUTE FUNCTION medkb_refuse_change();
