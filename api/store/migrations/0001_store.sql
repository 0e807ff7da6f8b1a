-- The versioned document store: what the file store keeps as head.json, documents/<type>/<id>/
-- (revisions and pointers) and changes/ + publications/.

-- The last committed change number: one row, updated in every commit's transaction, so numbers
-- are gap-free (a SEQUENCE hands out numbers that a rolled-back transaction never uses).
CREATE TABLE medkb_head (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq bigint NOT NULL CHECK (seq >= 0)
);
INSERT INTO medkb_head (seq) VALUES (0);

-- One row per document: its pointers (head, published, deleted, workflow, last_seq,
-- publication_seq), exactly the file store's pointers.json. `json`, not `jsonb`: the text is
-- kept as written, so both backends read back identical values.
-- Ids compare bytewise (COLLATE "C"): listings come out in the order the file store sorts them.
CREATE TABLE medkb_documents (
    type text NOT NULL,
    id text COLLATE "C" NOT NULL,
    pointers json NOT NULL,
    PRIMARY KEY (type, id)
);

-- Every revision ever written, immutable. `content` is NULL for a deletion tombstone; `at` is
-- the store's ISO 8601 text (api/store/clock.py), kept as text so it round-trips exactly.
CREATE TABLE medkb_revisions (
    type text NOT NULL,
    id text COLLATE "C" NOT NULL,
    revision integer NOT NULL CHECK (revision >= 1),
    content json,
    hash text,
    actor text NOT NULL,
    at text NOT NULL,
    message text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (type, id, revision),
    FOREIGN KEY (type, id) REFERENCES medkb_documents (type, id)
);

-- The global change sequence, which is also the audit log.
CREATE TABLE medkb_changes (
    seq bigint PRIMARY KEY CHECK (seq >= 1),
    type text NOT NULL,
    id text COLLATE "C" NOT NULL,
    revision integer NOT NULL,
    kind text NOT NULL,
    actor text NOT NULL,
    at text NOT NULL,
    message text NOT NULL,
    details json
);
-- The feed and every read model follow only these: the file store's publications/ log.
CREATE INDEX medkb_publications ON medkb_changes (seq) WHERE kind IN ('publish', 'unpublish', 'delete');
-- A document's audit trail.
CREATE INDEX medkb_changes_by_document ON medkb_changes (type, id, seq);

-- Nothing may replace or drop a revision or a change once written, whoever connects.
CREATE FUNCTION medkb_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'medkb: % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER medkb_revisions_append_only BEFORE UPDATE OR DELETE ON medkb_revisions
    FOR EACH ROW EXECUTE FUNCTION medkb_refuse_change();
CREATE TRIGGER medkb_revisions_no_truncate BEFORE TRUNCATE ON medkb_revisions
    FOR EACH STATEMENT EXECUTE FUNCTION medkb_refuse_change();
CREATE TRIGGER medkb_changes_append_only BEFORE UPDATE OR DELETE ON medkb_changes
    FOR EACH ROW EXECUTE FUNCTION medkb_refuse_change();
CREATE TRIGGER medkb_changes_no_truncate BEFORE TRUNCATE ON medkb_changes
    FOR EACH STATEMENT EXECUTE FUNCTION medkb_refuse_change();
