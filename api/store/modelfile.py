"""The read model's file: one SQLite database (WAL) that every process serving a store opens.

It holds two views of the store, each revision pre-serialized once (a revision both published
and head is stored once):

- `PUBLISHED`: each published document, the publication index the feed pages through (each
  document's latest publish/unpublish/delete change) and the references between documents;
- `HEAD`: each live head revision, drafts included, for preview.

Each view records the last change it applied. A process that finds the store ahead applies only
the changes since, a window at a time, each window in one write transaction of this file that
first rereads where the view stands: two processes catching up at once apply each change once,
and a process killed mid-apply leaves the file at the end of the last window it committed.
Applying is idempotent (a document is written as the store holds it now), so a window that
already saw a later commit is simply written again.

The file is derived data: missing, of an older format, or made from another store (the last
change or publication it applied is not the store's), it is rebuilt in one transaction when
opened. Opening happens outside request handling: `medkb serve` before its
workers start, `medkb import` after importing, and the app factory.

Built only through the store's interface (states, revision, publications, changes, published,
head, last_seq), so it works over any store backend; its location is a parameter, so each API node
over a shared database keeps its own.
"""
import errno
import functools
import os
import sqlite3
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import orjson

from schemas import LIST_FILTERS

FORMAT = 2  # bump on any change to the tables below: a file of another format is rebuilt
FILE_NAME = "readmodel.sqlite"
PUBLISHED, HEAD = 0, 1
WINDOW = 1000  # changes per write transaction while catching up: bounds how long others wait for the lock
BUSY_TIMEOUT_MS = 60_000
FOLLOW_INTERVAL_S = 0.05  # how often a build beside an import looks for the next batch

_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    view INTEGER NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL, etag TEXT NOT NULL,
    PRIMARY KEY (view, type, id));
CREATE INDEX IF NOT EXISTS documents_by_revision ON documents (type, id, revision);
CREATE TABLE IF NOT EXISTS bodies (
    type TEXT NOT NULL, id TEXT NOT NULL, revision INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (type, id, revision));
CREATE TABLE IF NOT EXISTS counts (view INTEGER NOT NULL, type TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (view, type));
CREATE TABLE IF NOT EXISTS refs (
    view INTEGER NOT NULL, target_type TEXT NOT NULL, target_id TEXT NOT NULL, source_type TEXT NOT NULL,
    field TEXT NOT NULL, source_id TEXT NOT NULL,
    PRIMARY KEY (view, target_type, target_id, source_type, field, source_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refs_by_source ON refs (view, source_type, source_id);
CREATE TABLE IF NOT EXISTS terms (
    view INTEGER NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, id TEXT NOT NULL,
    PRIMARY KEY (view, type, name, value, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS terms_by_document ON terms (view, type, id);
CREATE TABLE IF NOT EXISTS publications (
    type TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL UNIQUE, kind TEXT NOT NULL, PRIMARY KEY (type, id));
"""
_TABLES = ("documents", "bodies", "counts", "refs", "terms", "publications")
# A row of `documents` with its body: a revision both published and head is stored once, in `bodies`.
_WITH_BODY = ("SELECT d.revision, d.etag, b.body FROM documents d "
              "JOIN bodies b ON b.type = d.type AND b.id = d.id AND b.revision = d.revision")
_TEXT_END = "\U0010ffff"  # sorts after every other character: [prefix, prefix + _TEXT_END) holds all that start with it
_APPLIED = {PUBLISHED: "published_applied", HEAD: "head_applied"}


class _Abandoned(Exception):
    """A build given up: its transaction is rolled back."""


class ModelBusy(Exception):
    """Another process holds the file's write lock: the caller serves what it has and retries."""


class ModelUnwritable(sqlite3.OperationalError):
    """The disk refused the file's writes (full, failing, read-only): a reader serves what the file
    has and retries; `error` is the OSError that amounts to. Still an SQLite error to everyone else
    (the commands report those in one line)."""

    def __init__(self, path, error):
        super().__init__(f"{path}: {error}")
        self.error = error


# SQLite's result codes for a disk that refuses writes, as the OSError each amounts to.
_DISK_FAILURES = {sqlite3.SQLITE_FULL: errno.ENOSPC, sqlite3.SQLITE_IOERR: errno.EIO,
                  sqlite3.SQLITE_READONLY: errno.EROFS, sqlite3.SQLITE_CANTOPEN: errno.EACCES}


def default_path(store):
    return Path(store.root) / FILE_NAME


@functools.lru_cache(maxsize=4096)  # a few paths ("related.0.product") recur in every document
def _field_name(path):
    """'conditions.0' -> 'conditions', 'related.1.product' -> 'related.product': which field, not which item."""
    return ".".join(part for part in path.split(".") if not part.isdigit())


def _values_at(node, path):
    """The string values at a LIST_FILTERS path like 'classes[].code' or 'identifiers[system=atc].value'."""
    head, _, rest = path.partition(".")
    name, _, selector = head.partition("[")
    value = node.get(name) if isinstance(node, dict) else None
    if value is None:
        return
    if selector:
        wanted = selector.rstrip("]").partition("=")
        items = [item for item in value if not wanted[0] or (isinstance(item, dict)
                                                             and item.get(wanted[0]) == wanted[2])] \
            if isinstance(value, list) else []
    else:
        items = [value]
    for item in items:
        if rest:
            yield from _values_at(item, rest)
        elif isinstance(item, str):
            yield item


def list_terms(document):
    """(name, lower-cased value) of each LIST_FILTERS field the document has."""
    return {(name, value.lower()) for name, path in LIST_FILTERS.get(document.get("type"), ())
            for value in _values_at(document, path)}


def _where(view, type_name, clauses):
    """SQL and parameters selecting documents of a view and type whose terms meet every clause.
    A clause is a list of alternatives (name, value, prefix): the term equals value, or with
    prefix true, starts with it."""
    sql, params = ["view = ? AND type = ?"], [view, type_name]
    for alternatives in clauses:
        tests, clause_params = [], [view, type_name]
        for name, value, prefix in alternatives:
            if prefix:
                tests.append("(name = ? AND value >= ? AND value < ?)")
                clause_params += [name, value, value + _TEXT_END]
            else:
                tests.append("(name = ? AND value = ?)")
                clause_params += [name, value]
        sql.append(f"id IN (SELECT id FROM terms WHERE view = ? AND type = ? AND ({' OR '.join(tests)}))")
        params += clause_params
    return " AND ".join(sql), params


def _fingerprint(change):
    return f"{change.seq} {change.type}/{change.id} {change.kind} {change.at}" if change else ""


def _schema_statements():
    """(CREATE TABLE statements, CREATE INDEX statements) of _SCHEMA."""
    statements = [statement.strip() for statement in _SCHEMA.split(";") if statement.strip()]
    return ([s for s in statements if s.startswith("CREATE TABLE")],
            [s for s in statements if not s.startswith("CREATE TABLE")])


class _Batch:
    """Rows of a build on their way into the empty tables, written a batch at a time."""

    SIZE = 2000  # rows of `documents` (two per document) held before they are written

    def __init__(self, db):
        self.db = db
        self.documents, self.bodies, self.refs, self.terms, self.publications = [], [], [], [], []

    def add(self, view, type_name, id_, revision, derived, body=True):
        body_bytes, targets, terms = derived
        self.documents.append((view, type_name, id_, revision.revision, revision.hash))
        if body:
            self.bodies.append((type_name, id_, revision.revision, body_bytes))
        self.refs += [(view, type_name, id_, *target) for target in targets]
        self.terms += [(view, type_name, id_, *term) for term in terms]

    def flush_if_full(self):
        if len(self.documents) >= self.SIZE:
            self.flush()

    def flush(self):
        db = self.db
        db.executemany("INSERT INTO documents (view, type, id, revision, etag) VALUES (?, ?, ?, ?, ?)", self.documents)
        db.executemany("INSERT INTO bodies (type, id, revision, body) VALUES (?, ?, ?, ?)", self.bodies)
        db.executemany("INSERT INTO refs (view, source_type, source_id, field, target_type, target_id) "
                       "VALUES (?, ?, ?, ?, ?, ?)", self.refs)
        db.executemany("INSERT INTO terms (view, type, id, name, value) VALUES (?, ?, ?, ?, ?)", self.terms)
        db.executemany("INSERT INTO publications (type, id, seq, kind) VALUES (?, ?, ?, ?)", self.publications)
        for rows in (self.documents, self.bodies, self.refs, self.terms, self.publications):
            rows.clear()


class ModelFile:
    def __init__(self, path, references):
        """references(document) yields the (field path, type, id) a document points at; every process
        sharing the file must pass the same function."""
        self.path = Path(path)
        self._references = references
        self._local = threading.local()
        self._derived = None  # (revision, body, targets, terms) of the revision last put

    # --- connections -----------------------------------------------------------

    def _db(self):
        # One connection per thread, and never one inherited through fork(): SQLite forbids both.
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.db, local.pid = self._connect(), os.getpid()
        return local.db

    def _connect(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                             check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # Derived data: losing the last transactions to a power cut only means applying them again.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_META)  # the rest is made by _build, in the format it writes
        return db

    def close(self):
        db = getattr(self._local, "db", None)
        if db is not None and self._local.pid == os.getpid():
            db.close()
        self._local.__dict__.clear()

    @contextmanager
    def _writing(self, wait=True):
        db = self._db()
        if not wait:
            db.execute("PRAGMA busy_timeout=0")
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            raise ModelBusy(f"{self.path}: {error}") from None
        finally:
            if not wait:
                db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            # A COMMIT the disk refused can leave the transaction open: end it, or the next BEGIN fails.
            with suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise

    @contextmanager
    def reading(self):
        """One read transaction on this thread's connection: every read made inside it sees the
        file as of its first read, whatever another process commits meanwhile."""
        db = self._db()
        db.execute("BEGIN")
        try:
            yield
        finally:
            db.execute("COMMIT")

    # --- meta -------------------------------------------------------------------

    def meta(self, db=None):
        return dict((db or self._db()).execute("SELECT key, value FROM meta").fetchall())

    @staticmethod
    def _set_meta(db, **values):
        db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())

    def built(self):
        """Whether the file holds a complete model of this format (perhaps behind the store)."""
        return self.meta().get("format") == FORMAT

    def applied(self, view, meta=None):
        return (meta or self.meta()).get(_APPLIED[view], 0)

    # --- opening and building ---------------------------------------------------

    def open(self, store, announce=None):
        """Make the file follow `store`: rebuild it if it is missing or not this store's, then apply
        what the store committed since. Returns why it was rebuilt, or None. announce(reason) is
        called before a build, which reads every document."""
        reason = self._stale(store, self.meta())
        if reason:
            with self._writing() as db:
                reason = self._stale(store, self.meta(db))  # another process may have built it meanwhile
                if reason:
                    if announce:
                        announce(reason)
                    self._build(db, store)
            if reason:
                self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        last = store.last_seq()
        self.catch_up(store, PUBLISHED, last)
        self.catch_up(store, HEAD, last)
        return reason

    @staticmethod
    def _stale(store, meta):
        """Why the file cannot follow `store`, or None. The last change and the last publication
        each view applied must be the store's own: a file made from another store, or from this
        one before it was restored from a backup, fails one or the other."""
        last = store.last_seq()  # read after `meta`: whatever another process applied is committed by now
        if not meta:
            return "missing"
        if meta.get("format") != FORMAT:
            return f"format {meta.get('format')}, not {FORMAT}"
        head_applied, published_seq = meta.get("head_applied", 0), meta.get("published_seq", 0)
        if max(meta.get("published_applied", 0), head_applied) > last:
            return f"ahead of the store (at change {last})"
        if head_applied and _fingerprint(next(iter(store.changes(head_applied - 1, limit=1)), None)) \
                != meta.get("head_tip"):
            return f"change {head_applied} differs from the store's"
        if published_seq and _fingerprint(next(iter(store.publications(published_seq - 1, published_seq)), None)) \
                != meta.get("published_tip"):
            return f"publication {published_seq} differs from the store's"
        return None

    def _build(self, db, store):
        """Every table afresh, in the caller's one transaction: a build killed midway leaves the
        file as it was before (missing or stale, so rebuilt at the next open). The tables start
        empty, so rows are appended in batches with nothing to look up or replace, and the
        secondary indexes are made once at the end rather than kept up to date row by row."""
        last = store.last_seq()  # first: a commit landing during the scan is applied after it
        self._create_tables(db)
        batch = _Batch(db)
        latest = self._fill(batch, store.entries())
        batch.flush()
        self._complete(db, store, last, latest, "from the store")

    def build_following(self, store, import_status):
        """Build the file afresh while a first import fills the store, rather than after it: each
        change is applied once committed, its document read from the store at once, until
        import_status() says the import is over (True) or failed (False), and returns only then.
        Returns whether the file was built; when not (the import failed, or a document changed
        twice: the store was not empty, or another writer was at work), the file is left as it
        was, for open() to build from the whole store."""
        try:
            with self._writing() as db:
                self._create_tables(db)
                batch, applied, latest = _Batch(db), 0, 0
                while True:
                    status = import_status()  # before the look: what was committed by then is seen
                    last = store.last_seq()
                    if last > applied:
                        keys = [(change.type, change.id) for change in store.changes(applied, limit=last - applied)]
                        latest = max(latest, self._fill(batch, store.entries_of(keys)))
                        applied = last
                    elif status is None:
                        time.sleep(FOLLOW_INTERVAL_S)
                    elif status:
                        break
                    else:
                        raise _Abandoned
                batch.flush()  # a document met twice breaks the tables' primary keys
                self._complete(db, store, applied, latest, "beside the import")
        except (_Abandoned, sqlite3.IntegrityError):
            while import_status() is None:  # given up mid-import: the caller still waits for its end
                time.sleep(FOLLOW_INTERVAL_S)
            return False
        self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return True

    def _create_tables(self, db):
        for table in _TABLES:
            db.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _schema_statements()[0]:
            db.execute(statement)

    def _fill(self, batch, entries):
        """The rows of `entries` into the empty tables; returns their latest publication change."""
        latest = 0
        for state, head, published in entries:
            if published is not None and head.revision == published.revision:
                head = published  # most documents' head is their published revision: derived and stored once
            if published is not None:
                batch.add(PUBLISHED, state.type, state.id, published, self._derive(published))
            if not head.deleted:
                batch.add(HEAD, state.type, state.id, head, self._derive(head), body=head is not published)
            if state.publication_seq:
                kind = "delete" if state.deleted else "publish" if state.published else "unpublish"
                batch.publications.append((state.type, state.id, state.publication_seq, kind))
                latest = max(latest, state.publication_seq)
            batch.flush_if_full()
        return latest

    def _complete(self, db, store, last, latest, how):
        """The indexes, the counts and the meta of a build that applied the store up to `last`;
        `how` it was built is kept for whoever looks into the file."""
        for statement in _schema_statements()[1]:
            db.execute(statement)
        db.execute("INSERT INTO counts (view, type, n) SELECT view, type, count(*) FROM documents GROUP BY view, type")
        published_tip = _fingerprint(next(iter(store.publications(latest - 1, latest)), None)) if latest else ""
        head_tip = _fingerprint(next(iter(store.changes(last - 1, limit=1)), None)) if last else ""
        builds = self.meta(db).get("builds", 0) + 1
        self._set_meta(db, format=FORMAT, published_applied=last, head_applied=last, published_seq=latest or 0,
                       published_tip=published_tip, head_tip=head_tip, builds=builds, built=how)

    # --- applying changes ---------------------------------------------------------

    def catch_up(self, store, view, last, wait=True):
        """Apply the store's changes up to `last` to `view`. With wait=False, raises ModelBusy
        instead of waiting while another process writes the file; ModelUnwritable when the disk
        refuses the writes (what was applied before stays)."""
        try:
            while self.applied(view) < last:
                with self._writing(wait) as db:
                    applied = self.applied(view, self.meta(db))
                    if applied >= last:
                        return
                    if view == PUBLISHED:
                        self._apply_publications(db, store, applied, min(last, applied + WINDOW))
                    else:
                        self._apply_heads(db, store, applied, last)
        except sqlite3.OperationalError as error:
            code = _DISK_FAILURES.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)
            if code is None:
                raise
            raise ModelUnwritable(self.path, OSError(code, f"{os.strerror(code)} ({error})")) from None

    def _apply_publications(self, db, store, applied, until):
        changes = store.publications(applied, until)
        for type_name, id_ in dict.fromkeys((change.type, change.id) for change in changes):
            self._put(db, PUBLISHED, type_name, id_, store.published(type_name, id_))
        for change in changes:
            db.execute("INSERT OR REPLACE INTO publications (type, id, seq, kind) VALUES (?, ?, ?, ?)",
                       (change.type, change.id, change.seq, change.kind))
        values = {"published_applied": until}
        if changes:
            values.update(published_seq=changes[-1].seq, published_tip=_fingerprint(changes[-1]))
        self._set_meta(db, **values)

    def _apply_heads(self, db, store, applied, last):
        changes = store.changes(applied, limit=min(WINDOW, last - applied))
        for type_name, id_ in dict.fromkeys((change.type, change.id) for change in changes):
            head = store.head(type_name, id_)
            self._put(db, HEAD, type_name, id_, None if head is None or head.deleted else head)
        if changes:
            self._set_meta(db, head_applied=changes[-1].seq, head_tip=_fingerprint(changes[-1]))

    def _put(self, db, view, type_name, id_, revision):
        key = (view, type_name, id_)
        row = db.execute("SELECT revision FROM documents WHERE view = ? AND type = ? AND id = ?", key).fetchone()
        old = row[0] if row else None
        if revision is not None and revision.revision == old:
            return  # applied already: revisions never change
        db.execute("DELETE FROM refs WHERE view = ? AND source_type = ? AND source_id = ?", key)
        db.execute("DELETE FROM terms WHERE view = ? AND type = ? AND id = ?", key)
        if revision is None:
            if old is not None:
                db.execute("DELETE FROM documents WHERE view = ? AND type = ? AND id = ?", key)
                db.execute("UPDATE counts SET n = n - 1 WHERE view = ? AND type = ?", (view, type_name))
        else:
            db.execute("INSERT OR REPLACE INTO documents (view, type, id, revision, etag) VALUES (?, ?, ?, ?, ?)",
                       (*key, revision.revision, revision.hash))
            body, targets, terms = self._derive(revision)
            db.execute("INSERT OR IGNORE INTO bodies (type, id, revision, body) VALUES (?, ?, ?, ?)",
                       (type_name, id_, revision.revision, body))
            if old is None:
                db.execute("INSERT INTO counts (view, type, n) VALUES (?, ?, 1) "
                           "ON CONFLICT (view, type) DO UPDATE SET n = n + 1", (view, type_name))
            db.executemany("INSERT INTO refs (view, source_type, source_id, field, target_type, target_id) "
                           "VALUES (?, ?, ?, ?, ?, ?)", [(*key, *target) for target in targets])
            db.executemany("INSERT INTO terms (view, type, id, name, value) VALUES (?, ?, ?, ?, ?)",
                           [(*key, *term) for term in terms])
        if old is not None and not db.execute("SELECT 1 FROM documents WHERE type = ? AND id = ? AND revision = ?",
                                              (type_name, id_, old)).fetchone():
            db.execute("DELETE FROM bodies WHERE type = ? AND id = ? AND revision = ?", (type_name, id_, old))

    def _derive(self, revision):
        """The body, references and filter terms of a revision. The last one is remembered: a
        revision that is both published and head is put into both views, and derived once."""
        derived = self._derived  # read once: another thread may put another revision meanwhile
        if derived is None or derived[0] is not revision:
            targets = {(_field_name(field), target_type, target_id)
                       for field, target_type, target_id in self._references(revision.content)}
            derived = self._derived = (revision, orjson.dumps(revision.content), targets, list_terms(revision.content))
        return derived[1:]

    # --- reading ------------------------------------------------------------------

    def get(self, view, type_name, id_):
        return self._db().execute(f"{_WITH_BODY} WHERE d.view = ? AND d.type = ? AND d.id = ?",
                                  (view, type_name, id_)).fetchone()

    def page(self, view, type_name, offset, limit, clauses=()):
        """(revision, etag, body) of documents of a type in id order, `limit` of them from `offset`,
        among those meeting `clauses` (see _where)."""
        where, params = _where(view, type_name, clauses)
        # Skipping `offset` rows reads the small rows of `documents` only, no body.
        return self._db().execute(
            f"{_WITH_BODY} WHERE d.rowid IN (SELECT rowid FROM documents WHERE {where} ORDER BY id LIMIT ? OFFSET ?) "
            "ORDER BY d.id", (*params, limit, offset)).fetchall()

    def iterate(self, view, type_name, clauses=(), batch=500):
        where, params = _where(view, type_name, clauses)
        after = ""
        while True:
            rows = self._db().execute(
                f"{_WITH_BODY.replace('SELECT ', 'SELECT d.id, ', 1)} WHERE d.rowid IN (SELECT rowid FROM documents "
                f"WHERE {where} AND id > ? ORDER BY id LIMIT ?) ORDER BY d.id", (*params, after, batch)).fetchall()
            for row in rows:
                yield row[1:]
            if len(rows) < batch:
                return
            after = rows[-1][0]

    def count(self, view, type_name=None, clauses=()):
        if clauses:
            where, params = _where(view, type_name, clauses)
            row = self._db().execute(f"SELECT count(*) FROM documents WHERE {where}", params).fetchone()
        elif type_name is None:
            row = self._db().execute("SELECT sum(n) FROM counts WHERE view = ?", (view,)).fetchone()
        else:
            row = self._db().execute("SELECT n FROM counts WHERE view = ? AND type = ?", (view, type_name)).fetchone()
        return (row and row[0]) or 0

    def referrers(self, view, type_name, id_):
        """(type, id) of the documents that refer to this one, itself excepted, sorted."""
        return self._db().execute(
            "SELECT DISTINCT source_type, source_id FROM refs WHERE view = ? AND target_type = ? AND target_id = ? "
            "AND NOT (source_type = ? AND source_id = ?) ORDER BY source_type, source_id",
            (view, type_name, id_, type_name, id_)).fetchall()

    def referring(self, view, type_name, id_, source_type, field):
        """(revision, etag, body) of the documents of `source_type` whose `field` refers to this one, by id."""
        return self._db().execute(
            f"{_WITH_BODY} WHERE d.view = ? AND d.type = ? AND d.id IN "
            "(SELECT source_id FROM refs WHERE view = ? AND target_type = ? AND target_id = ? AND source_type = ? "
            "AND field = ?) ORDER BY d.id",
            (view, source_type, view, type_name, id_, source_type, field)).fetchall()

    def publications_after(self, since, batch=500):
        """(seq, type, id, kind) of each document's latest publication change after `since`, in order."""
        while True:
            rows = self._db().execute("SELECT seq, type, id, kind FROM publications WHERE seq > ? ORDER BY seq LIMIT ?",
                                      (since, batch)).fetchall()
            yield from rows
            if len(rows) < batch:
                return
            since = rows[-1][0]
