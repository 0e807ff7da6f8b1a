"""Indexes over the store, in one SQLite file beside it (`indexes.sqlite`): what editorial lists
and the scheduler query, so none of them reads every document.

    documents   one row per document: workflow state, head, published, schedule, title, author
    changes     one row per change, indexed by document, by actor and by time (the audit log)

The index is derived data. The files stay the source of truth and the commit point stays the
rename of head.json: a commit updates the index after that point, still holding the writer
lock, and records the last change it holds (`applied_seq`) in the same SQLite transaction. A
crash in between leaves the index behind the change log, never ahead of it, and the next writer
(or a reader who notices) replays the missing changes from the log: nothing committed is lost
from it, a scheduled publish included. Deleting the file is always safe: it is rebuilt.

SQLite (WAL) rather than more JSON files: many processes read it while one writes, each query
reads only the pages it needs, and a page of a filtered list is an indexed range scan.
"""
import datetime
import logging
import sqlite3
import threading

import orjson

from api.store.clock import iso
from api.store.journal import change_row, next_pointers
from api.store.records import Change, StorageUnavailable, StoreError
from api.store.storage import StoreCorrupt

log = logging.getLogger(__name__)

FILE_NAME = "indexes.sqlite"
VERSION = 1
# The field that names a document of each type: what lists show as its title.
TITLE_FIELDS = {"faq": "question", "article": "headline", "product": "name", "mechanism": "title",
                "condition": "name", "source": "title", "person": "name"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS documents (
    type TEXT NOT NULL, id TEXT NOT NULL, state TEXT NOT NULL, head INTEGER NOT NULL, published INTEGER,
    deleted INTEGER NOT NULL, approved_revision INTEGER, publish_at TEXT, due_at TEXT, title TEXT NOT NULL,
    author TEXT NOT NULL, at TEXT NOT NULL, last_seq INTEGER NOT NULL, publication_seq INTEGER NOT NULL,
    PRIMARY KEY (type, id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS documents_by_state ON documents (state, type, id);
CREATE INDEX IF NOT EXISTS documents_due ON documents (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS documents_published ON documents (state, publication_seq);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
    row BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS changes_by_document ON changes (type, id, seq);
CREATE INDEX IF NOT EXISTS changes_by_actor ON changes (actor, seq);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (at, seq);
"""

DOCUMENT_COLUMNS = ("type", "id", "state", "head", "published", "deleted", "approved_revision", "publish_at",
                    "due_at", "title", "author", "at", "last_seq", "publication_seq")


def workflow_state(deleted, workflow, published, head):
    """The workflow state of a document (documents imported before any workflow ran have none
    recorded: published if their head is published, else a draft)."""
    if deleted:
        return "deleted"
    return (workflow or {}).get("state") or ("published" if published == head else "draft")


def title_of(document):
    if not isinstance(document, dict):
        return ""
    title = document.get(TITLE_FIELDS.get(document.get("type"), ""), "")
    return title if isinstance(title, str) and title else document.get("id", "")


def due_at(state, publish_at):
    """When a scheduled publish falls due, in the clock's text form (microseconds, Z) so that it
    compares as text with now; None unless the document waits, approved, for a time."""
    if state != "approved" or not publish_at:
        return None
    try:
        return iso(datetime.datetime.fromisoformat(publish_at.replace("Z", "+00:00")))
    except (ValueError, OverflowError, AttributeError):  # the workflow writes none such; a hand-edited file might
        log.error("indexes: publish_at %r is not a time; it is not scheduled", publish_at)
        return None


def head_labels(revision):
    """What the documents row keeps of a head revision: its title, who wrote it and when."""
    return (title_of(revision.content) if revision.content else revision.id), revision.actor, revision.at


def document_row(type_name, id_, pointers, title, author, at):
    """The documents row of a document from its pointers and its head's labels."""
    workflow = pointers.get("workflow") or {}
    deleted = bool(pointers.get("deleted", False))
    state = workflow_state(deleted, workflow, pointers.get("published"), pointers["head"])
    return {"type": type_name, "id": id_, "state": state, "due_at": due_at(state, workflow.get("publish_at")),
            "head": pointers["head"], "published": pointers.get("published"), "deleted": int(deleted),
            "approved_revision": (workflow.get("approved") or {}).get("revision"),
            "publish_at": workflow.get("publish_at"), "title": title, "author": author, "at": at,
            "last_seq": pointers.get("last_seq", 0), "publication_seq": pointers.get("publication_seq", 0)}


class Filter:
    """A WHERE clause built from optional conditions: those given as None are left out."""

    def __init__(self):
        self.clauses, self.values = [], []

    def add(self, clause, *values):
        if all(value is not None for value in values):
            self.clauses.append(clause)
            self.values.extend(values)
        return self

    def sql(self):
        return f" WHERE {' AND '.join(self.clauses)}" if self.clauses else ""


class Indexes:
    def __init__(self, root):
        self.path = root / FILE_NAME
        self._local = threading.local()

    # --- connection -----------------------------------------------------------

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.row_factory = sqlite3.Row
            # WAL: readers in every worker never block the writer, nor it them. synchronous=NORMAL
            # may lose the last transactions on power loss, which only leaves the index behind
            # the change log: the catch-up replays them.
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            if connection.execute("PRAGMA user_version").fetchone()[0] != VERSION:
                connection.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={VERSION}; COMMIT;")
            self._local.connection = connection
        return connection

    def close(self):
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def applied_seq(self):
        row = self._connection().execute("SELECT value FROM meta WHERE key = 'applied_seq'").fetchone()
        return row[0] if row else 0

    # --- keeping up with the store ----------------------------------------------

    def current(self, store):
        """These indexes, holding every change the store committed: a commit that a crash kept
        out of them is replayed first (under the writer lock)."""
        try:
            if self.applied_seq() < store.last_seq():
                with store.writing():
                    pass  # taking the lock catches up
                if self.applied_seq() < store.last_seq():
                    raise sqlite3.DatabaseError("it cannot catch up with the change log")
        except sqlite3.Error as error:
            raise StorageUnavailable(OSError(f"{self.path}: {error} (medkb check --repair rebuilds it)")) from None
        return self

    def catch_up(self, store, chunk=5000):
        """Replay the committed changes the indexes lack: after a crash between a commit point
        and its index update, or in a store that never had them. The writer lock is held.
        Derived data never stops a write: on an SQLite failure this logs, and lists wait."""
        try:
            applied, last = self.applied_seq(), store.last_seq()
            if applied > last:  # a store restored from a backup older than its index
                self.clear()
                applied = 0
            while applied < last:
                changes = store.changes(applied, limit=chunk)
                rows = []
                for type_name, id_ in dict.fromkeys((c.type, c.id) for c in changes):
                    state = store.state(type_name, id_)
                    if state is not None:
                        pointers = {"head": state.head, "published": state.published, "deleted": state.deleted,
                                    "workflow": state.workflow, "last_seq": state.last_seq,
                                    "publication_seq": state.publication_seq}
                        rows.append(document_row(type_name, id_, pointers, *head_labels(store.head(type_name, id_))))
                self.apply(changes, rows)
                applied = changes[-1].seq
        except sqlite3.Error:
            log.exception("indexes: cannot catch up with the change log")

    def record(self, store, done):
        """Record committed changes, [(commit, pointers before, change)], as the writer that made
        them, lock held. Past the commit point nothing may fail the write: if this does, the
        index lags and the next writer replays the changes."""
        try:
            if self.applied_seq() != done[0][2].seq - 1:
                return  # already behind: the next catch-up replays these with the rest
            rows = []
            for commit, pointers, change in done:
                after = next_pointers(commit, pointers, change.seq, change.revision)
                if commit.adds_revision:
                    head = title_of(commit.content) if commit.content else change.id, change.actor, change.at
                else:
                    head = self._head_labels(store, change.type, change.id, after["head"])
                rows.append(document_row(change.type, change.id, after, *head))
            self.apply([change for _, _, change in done], rows)
        except (sqlite3.Error, StoreError, StoreCorrupt, OSError):
            log.exception("indexes: could not record changes %s-%s; the next writer replays them",
                          done[0][2].seq, done[-1][2].seq)

    def known_documents(self, store, keys):
        """Those of `keys` [(type, id)] that have a documents row, or None when the index cannot
        tell exactly: only when it holds every committed change does a missing row mean that no
        pointers exist. The caller holds the writer lock, so no change lands meanwhile."""
        try:
            if self.applied_seq() != store.last_seq():
                return None
            ids = {}
            for type_name, id_ in keys:
                ids.setdefault(type_name, []).append(id_)
            connection = self._connection()
            return {(type_name, row[0]) for type_name, group in ids.items() for row in connection.execute(
                "SELECT id FROM documents WHERE type = ? AND id IN (SELECT value FROM json_each(?))",
                (type_name, orjson.dumps(group).decode()))}
        except sqlite3.Error:
            log.exception("indexes: cannot look documents up; the commit reads their pointers")
            return None

    def _head_labels(self, store, type_name, id_, number):
        row = self.document(type_name, id_)
        if row is not None and row["head"] == number:
            return row["title"], row["author"], row["at"]  # a transition: the head is unchanged
        return head_labels(store.revision(type_name, id_, number))

    def rebuild(self, store):
        """Throw the file away and build it again from the change log (check --repair). Raises
        StoreError when it could not be built (catch_up has logged why)."""
        with store.writing():
            self.close()
            for suffix in ("", "-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
            self.catch_up(store)
            try:
                built = self.applied_seq() >= store.last_seq()
            except sqlite3.Error:
                built = False
            if not built:
                raise StoreError(f"{self.path}: could not be rebuilt from the change log (the line above says "
                                 f"why); it is derived data, and the store itself is unaffected.")

    # --- writing (the store's writer lock is held) -----------------------------

    def apply(self, changes, rows):
        """Record committed `changes` (in order) and the new documents rows they made."""
        connection = self._connection()
        with _transaction(connection):
            connection.executemany(
                "INSERT OR REPLACE INTO changes (seq, type, id, actor, at, row) VALUES (?, ?, ?, ?, ?, ?)",
                [(c.seq, c.type, c.id, c.actor, c.at, orjson.dumps(change_row(c))) for c in changes])
            connection.executemany(
                f"INSERT OR REPLACE INTO documents ({', '.join(DOCUMENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(DOCUMENT_COLUMNS))})",
                [tuple(row[name] for name in DOCUMENT_COLUMNS) for row in rows])
            if changes:
                connection.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('applied_seq', ?)",
                                   (changes[-1].seq,))

    def clear(self):
        connection = self._connection()
        with _transaction(connection):
            for table in ("changes", "documents", "meta"):
                connection.execute(f"DELETE FROM {table}")

    # --- documents --------------------------------------------------------------

    def document(self, type_name, id_):
        row = self._connection().execute("SELECT * FROM documents WHERE type = ? AND id = ?",
                                         (type_name, id_)).fetchone()
        return dict(row) if row else None

    @staticmethod
    def _document_filter(type_name=None, state=None, author=None, not_author=None, scheduled=None, live=False,
                         title_contains=None):
        where = Filter().add("type = ?", type_name).add("state = ?", state).add("author = ?", author)
        where.add("author != ?", not_author)
        if scheduled is not None:
            where.add("publish_at IS NOT NULL" if scheduled else "publish_at IS NULL")
        if live:
            where.add("deleted = 0")
        if title_contains:
            pattern = "%" + title_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.add("(title LIKE ? ESCAPE '\\' OR id LIKE ? ESCAPE '\\')", pattern, pattern)
        return where

    def documents(self, offset=0, limit=None, order="type, id", **conditions):
        where = self._document_filter(**conditions)
        rows = self._connection().execute(
            f"SELECT * FROM documents{where.sql()} ORDER BY {order} LIMIT ? OFFSET ?",
            (*where.values, -1 if limit is None else limit, offset))
        return [dict(row) for row in rows]

    def count_documents(self, **conditions):
        where = self._document_filter(**conditions)
        return self._connection().execute(f"SELECT count(*) FROM documents{where.sql()}", where.values).fetchone()[0]

    def due(self, now_iso, limit=1000):
        """Approved documents whose publish_at has come, earliest first."""
        rows = self._connection().execute(
            "SELECT * FROM documents WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?",
            (now_iso, limit))
        return [dict(row) for row in rows]

    def next_due(self):
        row = self._connection().execute(
            "SELECT min(due_at) FROM documents WHERE due_at IS NOT NULL").fetchone()
        return row[0]

    # --- changes ----------------------------------------------------------------

    @staticmethod
    def _change_filter(type_name=None, id_=None, actor=None, since=None, until=None):
        return (Filter().add("type = ? AND id = ?", type_name, id_).add("actor = ?", actor)
                .add("at >= ?", since).add("at <= ?", until))

    def changes(self, offset=0, limit=None, newest_first=False, **conditions):
        where = self._change_filter(**conditions)
        rows = self._connection().execute(
            f"SELECT row FROM changes{where.sql()} ORDER BY seq {'DESC' if newest_first else 'ASC'} LIMIT ? OFFSET ?",
            (*where.values, -1 if limit is None else limit, offset))
        return [Change(**orjson.loads(row[0])) for row in rows]

    def count_changes(self, **conditions):
        where = self._change_filter(**conditions)
        return self._connection().execute(f"SELECT count(*) FROM changes{where.sql()}", where.values).fetchone()[0]


class _transaction:
    def __init__(self, connection):
        self.connection = connection

    def __enter__(self):
        self.connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind, error, traceback):
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")
