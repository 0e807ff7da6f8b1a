"""The versioned document store on PostgreSQL, for several API nodes sharing one database.

Same interface and guarantees as the file store (store.py), with tables instead of files
(migrations/0001_store.sql):

- one transaction per commit: the revision, the document's pointers, the change and the change
  counter land together or not at all, and `commit` returns only once PostgreSQL has made the
  transaction durable (synchronous_commit, the server's default);
- writers serialize on one session-level advisory lock, held for the whole of `writing()`: what a
  caller reads inside (on the same connection) is what its commits are checked against, and a
  writer that dies lets go of the lock with its connection;
- stale writes are refused with the same Conflict errors (StoreBackend.check_commit);
- the change sequence is gap-free: the next number is the one-row counter plus one, read under
  the lock and set in the commit's transaction;
- revisions and changes are append-only, enforced by triggers whoever connects.

Reads run on pooled connections in autocommit: each query sees everything committed before it.
Database failures surface as StorageUnavailable (StorageFull when the server's disk is full):
a commit that raises one was not committed.
"""
import datetime
import hashlib
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path

import orjson
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import set_json_loads
from psycopg_pool import ConnectionPool, PoolTimeout

from schemas import DOCUMENT_TYPES

from api.store.base import StoreBackend
from api.store.clock import now_iso
from api.store.indexes import Indexes
from api.store.journal import next_pointers, revision_row
from api.store.keys import MAX_SECRET_LENGTH, SECRET_PREFIX, ApiKey, KeyStoreError, check_name, check_role
from api.store.keys import _secret_hash as secret_hash  # the one definition of how secrets are hashed
from api.store.records import (PUBLICATION_KINDS, Change, DocumentState, Revision, StorageFull, StorageUnavailable,
                               StoreError, content_hash)
from api.store.store import _DOCUMENT_ID
from api.store.sessions import _SESSION_ID as SESSION_ID
from api.store.sessions import _utc as session_utc
from api.store.sessions import LIFETIME as SESSION_LIFETIME, Session
from api.store.subscriptions import DeliveryState, Subscription, SubscriptionNotFound, new_secret

# pg_advisory_lock's key for the writers' lock: "medkb" in ASCII.
WRITERS_LOCK = int.from_bytes(b"medkb", "big")
# Another key, for schema migrations, so that two `medkb db migrate` never interleave.
MIGRATIONS_LOCK = WRITERS_LOCK + 1
# The first key of each webhook subscription's lease (pg_try_advisory_lock(int, int)).
WEBHOOK_LEASES = int.from_bytes(b"mkwh", "big") & 0x7FFFFFFF
BATCH = 500  # documents per query when listing every document
CONNECT_TIMEOUT = 5  # seconds to reach the server
# Seconds a caller waits for a pooled connection: with the database down, a request answers 503
# after this long rather than hanging.
POOL_TIMEOUT = 5
# How long a writer whose connection failed during its commit keeps asking the database whether
# the commit landed, before it answers that the outcome is not known.
LANDED_WAIT_S = 10

_REVISION_COLUMNS = "type, id, revision, content, hash, actor, at, message, seq"
_REVISION_WIDTH = len(_REVISION_COLUMNS.split(", "))
# Each document with its head and published revisions (entries()), one row each.
_ENTRIES = (f"SELECT d.type, d.id, d.pointers, {', '.join('h.' + c for c in _REVISION_COLUMNS.split(', '))}, "
            f"{', '.join('p.' + c for c in _REVISION_COLUMNS.split(', '))} FROM medkb_documents d "
            "JOIN medkb_revisions h ON h.type = d.type AND h.id = d.id AND h.revision = (d.pointers->>'head')::integer "
            "LEFT JOIN medkb_revisions p ON p.type = d.type AND p.id = d.id "
            "AND p.revision = (d.pointers->>'published')::integer")
_CHANGE_COLUMNS = "seq, type, id, revision, kind, actor, at, message, details"
_MIGRATION_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


def _entry(row):
    """(state, head revision, published revision or None) from a row of _ENTRIES."""
    name, id_, pointers = row[:3]
    head, published = row[3:3 + _REVISION_WIDTH], row[3 + _REVISION_WIDTH:]
    return (DocumentState.from_pointers(name, id_, pointers), Revision(*head),
            Revision(*published) if published[0] is not None else None)


class _Described:
    """A storage error told in words (the database's), not made from an OSError as the file store's are."""

    def __init__(self, message):
        StoreError.__init__(self, message)
        self.error = None


class DatabaseUnavailable(_Described, StorageUnavailable):
    """The database cannot be reached, or failed an operation. Nothing was committed."""

    def __init__(self, message, cause=""):
        super().__init__(message)
        self.cause = cause  # the driver's own words, in one line


class CommitOutcomeUnknown(_Described, StorageUnavailable):
    """The connection failed while the database was committing, and the database has not answered
    since: the change may have been saved or not. Never reported as "nothing was saved"."""


class DatabaseFull(_Described, StorageFull):
    pass


class InvalidDatabaseUrl(StoreError):
    pass


class SchemaMismatch(StoreError):
    """The database holds no medkb schema, or one of another version."""


def parse_url(url):
    """The URL's parts, or one line saying what is wrong with it (never echoing a password)."""
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        raise InvalidDatabaseUrl(f"MEDKB_DATABASE_URL is not a PostgreSQL URL ({_one_line(error).split(' in ')[0]}): "
                                 "give one such as postgresql://medkb@db.example.org:5432/medkb") from None


def describe(url):
    """The URL without its password: what error messages and logs may show."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "MEDKB_DATABASE_URL"
    host = parts.get("host") or "localhost"
    return f"postgresql://{parts.get('user', '') + '@' if parts.get('user') else ''}{host}" \
           f"{':' + str(parts['port']) if parts.get('port') else ''}/{parts.get('dbname', '')}"


def _one_line(error):
    return " ".join(str(error).split())


@contextmanager
def database_errors(url):
    """psycopg's failures as the store's errors, in one line naming the database (never its password)."""
    try:
        yield
    except pg_errors.DiskFull as error:
        raise DatabaseFull(f"{describe(url)}: the database server's disk is full ({_one_line(error)}); "
                           "nothing was saved.") from None
    except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as error:
        cause = _one_line(error) or type(error).__name__
        raise DatabaseUnavailable(f"{describe(url)}: {cause}; nothing was saved.", cause) from None


def _configure(durable):
    def configure(connection):
        # orjson reads `json` columns, as the file store reads its files: identical values.
        set_json_loads(orjson.loads, connection)
        if not durable:
            # Still atomic, but a server crash may forget the last commits: only for throwaway
            # stores (benchmark set-up), as Store(durable=False) is.
            connection.execute("SET synchronous_commit = off")
    return configure


def _json(value):
    return None if value is None else orjson.dumps(value).decode()


def _revision(row):
    return Revision(*row) if row else None


class PostgresStore(StoreBackend):
    def __init__(self, url, root, *, durable=True, pool_size=4):
        """Open the store in the database at `url` (a postgresql:// URL or conninfo string);
        `root` is this node's local folder, created if needed. Raises DatabaseUnavailable when the
        database cannot be reached, SchemaMismatch unless its schema is the one this code needs."""
        self.url = url
        self.root = Path(root)
        self.durable = durable
        self.commits = 0  # commits made through this object: lets this process read its own writes at once
        self._local = threading.local()
        self._writers = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        # This node's index file (indexes.py): derived from the change log, kept per node as the
        # file store keeps it beside its files, and caught up from the database's changes.
        self.indexes = Indexes(self.root)
        require_current_schema(url)
        with database_errors(url):
            self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=True, name="medkb", timeout=POOL_TIMEOUT,
                                        kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
                                        configure=_configure(durable), check=ConnectionPool.check_connection)

    def close(self):
        self._pool.close()
        self.indexes.close()

    def api_keys(self):
        return PostgresKeyStore(self)

    def webhook_subscriptions(self):
        return PostgresSubscriptions(self)

    def console_sessions(self):
        return PostgresSessionStore(self)

    @property
    def location(self):
        return describe(self.url)

    def __repr__(self):
        return f"PostgresStore({describe(self.url)!r})"

    # --- connections -----------------------------------------------------------

    @contextmanager
    def _connection(self):
        """The connection this thread writes on, inside writing(); otherwise a pooled one."""
        held = getattr(self._local, "connection", None)
        with database_errors(self.url):
            if held is not None:
                yield held
            else:
                with self._pool.connection() as connection:
                    yield connection

    def _one(self, query, params=()):
        with self._connection() as connection:
            return connection.execute(query, params).fetchone()

    def _all(self, query, params=()):
        with self._connection() as connection:
            return connection.execute(query, params).fetchall()

    # --- reading -------------------------------------------------------------

    def last_seq(self):
        return self._one("SELECT seq FROM medkb_head")[0]

    def head_stamp(self):
        """The last change number: one indexed read, and every commit moves it."""
        return self.last_seq()

    @staticmethod
    def _named(type_name, id_):
        # A name no document can have is not even sent: PostgreSQL text refuses NUL.
        return type_name in DOCUMENT_TYPES and isinstance(id_, str) and _DOCUMENT_ID.fullmatch(id_)

    def _pointers(self, type_name, id_):
        if not self._named(type_name, id_):
            return None
        row = self._one("SELECT pointers FROM medkb_documents WHERE type = %s AND id = %s", (type_name, id_))
        return row[0] if row else None

    def state(self, type_name, id_):
        pointers = self._pointers(type_name, id_)
        return DocumentState.from_pointers(type_name, id_, pointers) if pointers else None

    def revision(self, type_name, id_, number):
        if not self._named(type_name, id_) or not isinstance(number, int):
            return None
        return _revision(self._one(f"SELECT {_REVISION_COLUMNS} FROM medkb_revisions "
                                   "WHERE type = %s AND id = %s AND revision = %s", (type_name, id_, number)))

    def revisions(self, type_name, id_):
        if not self._named(type_name, id_):
            return []
        return [Revision(*row) for row in self._all(f"SELECT {_REVISION_COLUMNS} FROM medkb_revisions "
                                                     "WHERE type = %s AND id = %s ORDER BY revision", (type_name, id_))]

    def _pointed(self, type_name, id_, pointer):
        if not self._named(type_name, id_):
            return None
        return _revision(self._one(
            f"SELECT {', '.join('r.' + c for c in _REVISION_COLUMNS.split(', '))} FROM medkb_documents d "
            "JOIN medkb_revisions r ON r.type = d.type AND r.id = d.id "
            f"AND r.revision = (d.pointers->>'{pointer}')::integer WHERE d.type = %s AND d.id = %s", (type_name, id_)))

    def head(self, type_name, id_):
        return self._pointed(type_name, id_, "head")

    def published(self, type_name, id_):
        return self._pointed(type_name, id_, "published")

    def _types(self, type_name):
        return [type_name] if type_name else DOCUMENT_TYPES

    def _batches(self, type_name, query):
        """Rows of `query` for every document of each type, BATCH at a time, in id order: no
        connection is held while the caller works on a batch."""
        for name in self._types(type_name):
            after = ""
            while True:
                rows = self._all(query, (name, after, BATCH))
                yield from rows
                if len(rows) < BATCH:
                    break
                after = rows[-1][1]

    def keys(self, type_name=None):
        for name, id_ in self._batches(type_name, "SELECT type, id FROM medkb_documents WHERE type = %s AND id > %s "
                                                  "ORDER BY id LIMIT %s"):
            yield name, id_

    def states(self, type_name=None):
        for name, id_, pointers in self._batches(type_name, "SELECT type, id, pointers FROM medkb_documents "
                                                            "WHERE type = %s AND id > %s ORDER BY id LIMIT %s"):
            yield DocumentState.from_pointers(name, id_, pointers)

    def entries(self, type_name=None):
        for row in self._batches(type_name, f"{_ENTRIES} WHERE d.type = %s AND d.id > %s ORDER BY d.id LIMIT %s"):
            yield _entry(row)

    def entries_of(self, keys):
        """A query per BATCH documents, where the default would make three per document."""
        keys = list(keys)
        for start in range(0, len(keys), BATCH):
            chunk = keys[start:start + BATCH]
            rows = {(row[0], row[1]): row for row in self._all(
                f"{_ENTRIES} JOIN unnest(%s::text[], %s::text[]) AS k (type, id) ON k.type = d.type AND k.id = d.id",
                ([type_name for type_name, _ in chunk], [id_ for _, id_ in chunk]))}
            for key in chunk:
                if key in rows:
                    yield _entry(rows[key])

    def changes(self, since=0, limit=None):
        return [Change(*row) for row in self._all(f"SELECT {_CHANGE_COLUMNS} FROM medkb_changes WHERE seq > %s "
                                                  "ORDER BY seq LIMIT %s", (since, limit))]

    def publications(self, since=0, until=None):
        until = self.last_seq() if until is None else until
        if until <= since:
            return []
        return [Change(*row) for row in self._all(
            f"SELECT {_CHANGE_COLUMNS} FROM medkb_changes WHERE kind IN ('publish', 'unpublish', 'delete') "
            "AND seq > %s AND seq <= %s ORDER BY seq", (since, until))]

    # --- writing -------------------------------------------------------------

    @contextmanager
    def writing(self):
        """Hold the writers' lock (re-entrant within a thread): a session-level advisory lock on
        one connection, which every read and commit of this thread uses until the outermost exit."""
        if getattr(self._local, "connection", None) is not None:
            yield self
            return
        # This process's writers queue here first, holding no connection: at most one per process
        # waits on the database's lock, so waiting writers never take the connections readers need.
        with self._writers, database_errors(self.url), self._pool.connection() as connection:
            connection.execute("SELECT pg_advisory_lock(%s)", (WRITERS_LOCK,))
            self._local.connection = connection
            try:
                self.indexes.catch_up(self)
                yield self
            finally:
                self._local.connection = None
                try:
                    connection.execute("SELECT pg_advisory_unlock(%s)", (WRITERS_LOCK,))
                except psycopg.Error:
                    connection.close()  # a closed session holds no lock; the pool replaces it

    def commit(self, commit):
        return self.commit_batch([commit])[0]

    def commit_batch(self, commits):
        """Persist several already-validated changes, each to a different document, in one
        transaction: all or none (import). Returns their Changes."""
        if len({(c.type, c.id) for c in commits}) != len(commits):
            raise ValueError("a batch changes each document at most once")
        if not commits:
            return []
        with self.writing():
            last = self.last_seq()
            items, rows = [], []
            for seq, commit in enumerate(commits, last + 1):
                pointers = self._pointers(commit.type, commit.id) or {}
                self.check_commit(commit, pointers)
                number = pointers.get("head", 0) + 1 if commit.adds_revision else pointers.get("head", 0)
                change = Change(seq, commit.type, commit.id, number, commit.kind, commit.actor, now_iso(),
                                commit.message, commit.details)
                # Serialized before the transaction starts: content orjson cannot write fails
                # here, with nothing begun.
                revision = revision_row(commit.content, number, change) if commit.adds_revision else None
                rows.append((change, _json(next_pointers(commit, pointers, seq, number)),
                             (_json(revision["content"]), revision["hash"]) if revision else None))
                items.append((commit, pointers, change))
            changes = [change for _, _, change in items]
            try:
                self._write(last, rows)
            except DatabaseUnavailable as error:
                # An error the server sent rolled the transaction back. A connection that broke may
                # have broken after the server committed: look before saying no.
                landed = self._landed(changes[-1]) if self._local.connection.broken else False
                if landed is None:
                    raise CommitOutcomeUnknown(
                        f"{describe(self.url)}: the connection failed while committing ({error.cause}), and the "
                        f"database has not answered since: whether the change was saved is not known. Read the "
                        f"document before writing it again: its revision and ETag tell.") from None
                if not landed:
                    raise
            self.commits += 1
            self.indexes.record(self, items)
            return changes

    def _write(self, last, rows):
        connection = self._local.connection
        with database_errors(self.url), connection.transaction():
            moved = connection.execute("UPDATE medkb_head SET seq = %s WHERE seq = %s", (last + len(rows), last)).rowcount
            if moved != 1:
                raise StoreError(f"{describe(self.url)}: the change counter moved under the writers' lock; "
                                 "another program writes without it. Nothing was saved.")
            with connection.cursor() as cursor:
                cursor.executemany("INSERT INTO medkb_documents (type, id, pointers) VALUES (%s, %s, %s::json) "
                                   "ON CONFLICT (type, id) DO UPDATE SET pointers = excluded.pointers",
                                   [(change.type, change.id, pointers) for change, pointers, _ in rows])
                cursor.executemany(f"INSERT INTO medkb_revisions ({_REVISION_COLUMNS}) VALUES "
                                   "(%s, %s, %s, %s::json, %s, %s, %s, %s, %s)",
                                   [(change.type, change.id, change.revision, *revision, change.actor, change.at,
                                     change.message, change.seq) for change, _, revision in rows if revision])
                cursor.executemany(f"INSERT INTO medkb_changes ({_CHANGE_COLUMNS}) VALUES "
                                   "(%s, %s, %s, %s, %s, %s, %s, %s, %s::json)",
                                   [(change.seq, change.type, change.id, change.revision, change.kind, change.actor,
                                     change.at, change.message, _json(change.details)) for change, _, _ in rows])

    def index(self):
        """This node's indexes (indexes.py), caught up with every committed change."""
        return self.indexes.current(self)

    def identity(self):
        """What tells one store from another (search.py): a hash of its first change."""
        row = self._one("SELECT type, id, actor, at FROM medkb_changes WHERE seq = 1")
        return hashlib.sha256(orjson.dumps(row)).hexdigest()[:32] if row else None

    def copy_from(self, source, progress=None):
        """Copy every revision, document and change of `source` (any store) into this one, which
        must be empty, keeping every number: feed cursors, webhook cursors and ETags stay valid.
        One transaction: all of it or nothing. The source's writers wait meanwhile: documents read
        while its changes are being read must be of one moment, or the copy numbers changes past
        its head."""
        with source.writing(), self.writing():
            if self.last_seq():
                raise StoreError(f"{self.location} already holds {self.last_seq()} changes: copy into an empty database.")
            last = source.last_seq()
            connection = self._local.connection
            with database_errors(self.url), connection.transaction():
                states = list(source.states())
                for done, state in enumerate(states, 1):
                    pointers = {"head": state.head, "published": state.published, "deleted": state.deleted,
                                "workflow": state.workflow, "last_seq": state.last_seq,
                                "publication_seq": state.publication_seq}
                    connection.execute("INSERT INTO medkb_documents (type, id, pointers) VALUES (%s, %s, %s::json)",
                                       (state.type, state.id, _json(pointers)))
                    with connection.cursor() as cursor:
                        cursor.executemany(
                            f"INSERT INTO medkb_revisions ({_REVISION_COLUMNS}) VALUES "
                            "(%s, %s, %s, %s::json, %s, %s, %s, %s, %s)",
                            [(r.type, r.id, r.revision, _json(r.content), r.hash, r.actor, r.at, r.message, r.seq)
                             for r in source.revisions(state.type, state.id)])
                    if progress:
                        progress(done, len(states))
                copied = 0
                while copied < last:
                    batch = source.changes(copied, limit=BATCH)
                    with connection.cursor() as cursor:
                        cursor.executemany(f"INSERT INTO medkb_changes ({_CHANGE_COLUMNS}) VALUES "
                                           "(%s, %s, %s, %s, %s, %s, %s, %s, %s::json)",
                                           [(c.seq, c.type, c.id, c.revision, c.kind, c.actor, c.at, c.message,
                                             _json(c.details)) for c in batch])
                    copied = batch[-1].seq
                connection.execute("UPDATE medkb_head SET seq = %s", (last,))
            self.commits += 1
            return len(states), last

    def _landed(self, change):
        """Whether `change` is committed: True or False, asked with the writers' lock held, which the
        session that was committing it holds until the server has ended it, so the answer is final;
        None when the database does not answer that within LANDED_WAIT_S."""
        deadline = time.monotonic() + LANDED_WAIT_S
        while True:
            remaining = deadline - time.monotonic()
            try:
                with database_errors(self.url), self._pool.connection(timeout=max(remaining, 0.1)) as connection, \
                        connection.transaction():
                    connection.execute("SELECT set_config('lock_timeout', %s, true)",
                                       (f"{max(int(remaining * 1000), 100)}ms",))
                    connection.execute("SELECT pg_advisory_xact_lock(%s)", (WRITERS_LOCK,))
                    row = connection.execute("SELECT type, id, actor, at FROM medkb_changes WHERE seq = %s",
                                             (change.seq,)).fetchone()
                return row == (change.type, change.id, change.actor, change.at)
            except DatabaseUnavailable:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.2)

    # --- checks --------------------------------------------------------------

    def verify(self):
        """Every revision's hash and number, every pointer, and the change sequence: a list of
        problems, each naming the table and document. Reads everything, holding the writers' lock
        (every node's writes wait), so that what it compares is of one moment."""
        with self.writing():
            return self._verify()

    def _verify(self):
        problems = []
        last = self.last_seq()
        count, first, final = self._one("SELECT count(*), min(seq), max(seq) FROM medkb_changes")
        if count != last or (count and (first, final) != (1, last)):
            problems.append(f"medkb_changes: change sequence has gaps (holds {count} changes, "
                            f"numbered {first}..{final}, where 1..{last} were committed)")
        last_change = dict(((t, i), s) for t, i, s in self._all(
            "SELECT type, id, max(seq) FROM medkb_changes GROUP BY type, id"))
        for name in DOCUMENT_TYPES:
            documents = dict(((name, i), p) for i, p in self._all(
                "SELECT id, pointers FROM medkb_documents WHERE type = %s", (name,)))
            contents = {}  # id -> {revision number: whether it has content}
            for _, id_, number, content, hash_ in self._batches_of_revisions(name):
                where = f"medkb_revisions {name}/{id_}"
                contents.setdefault(id_, {})[number] = content is not None
                if content is not None and content_hash(content) != hash_:
                    problems.append(f"{where}: revision {number}: content does not match its hash")
                if content is not None and content.get("revision") != number:
                    problems.append(f"{where}: revision {number}: document says revision {content.get('revision')}")
            for (_, id_), pointers in documents.items():
                where = f"medkb_documents {name}/{id_}"
                found = sorted(contents.get(id_, {}))
                if found != list(range(1, len(found) + 1)):
                    problems.append(f"{where}: revisions are not numbered 1..{len(found)}: {found}")
                head = pointers.get("head")
                if head != (found[-1] if found else None):
                    problems.append(f"{where}: head points at {head}, latest revision is {found[-1] if found else None}")
                published = pointers.get("published")
                if published is not None and not contents.get(id_, {}).get(published):
                    problems.append(f"{where}: published points at revision {published}, which has no content")
                latest = last_change.get((name, id_))
                if pointers.get("last_seq", 0) > last:
                    problems.append(f"{where}: last change {pointers.get('last_seq')} is past the store's {last}")
                elif latest is not None and latest != pointers.get("last_seq"):
                    problems.append(f"{where}: last change is {pointers.get('last_seq')}, the change log says {latest}")
        return problems

    def _batches_of_revisions(self, type_name):
        after = ("", 0)
        while True:
            rows = self._all("SELECT type, id, revision, content, hash FROM medkb_revisions WHERE type = %s "
                             "AND (id, revision) > (%s, %s) ORDER BY id, revision LIMIT %s",
                             (type_name, *after, BATCH))
            yield from rows
            if len(rows) < BATCH:
                return
            after = (rows[-1][1], rows[-1][2])


class PostgresKeyStore:
    """API keys in the medkb_keys table: KeyStore's interface (keys.py), shared by every node.
    A revoked key stops working on every node at once: each check is one indexed query."""

    _COLUMNS = "id, name, role, created_at, revoked_at"

    def __init__(self, store):
        self.store = store

    def list(self):
        return [ApiKey(*row) for row in self.store._all(f"SELECT {self._COLUMNS} FROM medkb_keys "
                                                        "ORDER BY created_at, id")]

    def authenticate(self, secret):
        if (not isinstance(secret, str) or len(secret) > MAX_SECRET_LENGTH
                or not secret.startswith(SECRET_PREFIX) or not secret.isascii()):
            return None
        # An equality lookup on sha256(secret) reveals nothing a guesser could use: finding a
        # stored hash means knowing a 256-bit secret.
        row = self.store._one(f"SELECT {self._COLUMNS} FROM medkb_keys WHERE secret_sha256 = %s "
                              "AND revoked_at IS NULL", (secret_hash(secret),))
        return ApiKey(*row) if row else None

    def create(self, role, name):
        check_role(role)
        check_name(name)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        while True:
            key = ApiKey(id=f"k_{secrets.token_hex(4)}", name=name, role=role, created_at=now_iso(), revoked_at=None)
            try:
                with self.store._connection() as connection:
                    connection.execute(f"INSERT INTO medkb_keys ({self._COLUMNS}, secret_sha256) "
                                       "VALUES (%s, %s, %s, %s, NULL, %s)",
                                       (key.id, key.name, key.role, key.created_at, secret_hash(secret)))
                return key, secret
            except pg_errors.UniqueViolation as error:
                if error.diag.constraint_name == "medkb_keys_active_name":
                    raise KeyStoreError(f"an active key named {name!r} already exists: revoke it first, "
                                        "or choose another name") from None
                # Another key drew the same id: draw again.

    def revoke(self, name_or_id):
        if not isinstance(name_or_id, str) or not name_or_id:
            raise KeyStoreError(f"no key {name_or_id!r} to revoke")
        with self.store._connection() as connection, connection.transaction():
            row = connection.execute(f"SELECT {self._COLUMNS} FROM medkb_keys WHERE id = %s "
                                     "OR (name = %s AND revoked_at IS NULL) ORDER BY id = %s DESC LIMIT 1 FOR UPDATE",
                                     (name_or_id, name_or_id, name_or_id)).fetchone()
            if row is None:
                raise KeyStoreError(f"no active key with the name or id {name_or_id!r} to revoke")
            key = ApiKey(*row)
            if key.revoked_at is not None:
                raise KeyStoreError(f"key {key.id} ({key.name}) was already revoked at {key.revoked_at}")
            revoked = replace(key, revoked_at=now_iso())
            connection.execute("UPDATE medkb_keys SET revoked_at = %s WHERE id = %s", (revoked.revoked_at, key.id))
        return revoked


class PostgresSubscriptions:
    """Webhook subscriptions in tables: Subscriptions' interface (subscriptions.py), shared by
    every node. The lease is a session-level advisory lock on a connection of its own, which the
    server releases if the delivering process dies: two processes on any nodes never deliver to
    one subscription at once."""

    _DEFINITION = "id, url, events, types, secret, created_at, description"

    def __init__(self, store):
        self.store = store

    @staticmethod
    def _checked(sub_id):
        if not (isinstance(sub_id, str) and sub_id.startswith("wh_") and sub_id[3:].isalnum()):
            raise SubscriptionNotFound(f"No webhook subscription {sub_id!r}.")
        return sub_id

    @staticmethod
    def _subscription(row):
        sub_id, url, events, types, secret, created_at, description = row
        return Subscription(sub_id, url, tuple(events), tuple(types), secret, created_at, description)

    def stamp(self):
        return self.store._one("SELECT version FROM medkb_webhooks_version")[0]

    def create(self, url, events, types, description="", start_cursor=0):
        while True:
            subscription = Subscription(f"wh_{secrets.token_hex(4)}", url, tuple(events), tuple(types), new_secret(),
                                        now_iso(), description)
            try:
                with self.store._connection() as connection, connection.transaction():
                    connection.execute(
                        f"INSERT INTO medkb_webhooks ({self._DEFINITION}, state) "
                        "VALUES (%s, %s, %s::json, %s::json, %s, %s, %s, %s::json)",
                        (subscription.id, url, _json(list(events)), _json(list(types)), subscription.secret,
                         subscription.created_at, description, _json(asdict(DeliveryState(cursor=start_cursor)))))
                    connection.execute("UPDATE medkb_webhooks_version SET version = version + 1")
                return subscription
            except pg_errors.UniqueViolation:
                continue  # another subscription drew the same id: draw again

    def get(self, sub_id):
        row = self.store._one(f"SELECT {self._DEFINITION} FROM medkb_webhooks WHERE id = %s", (self._checked(sub_id),))
        if row is None:
            raise SubscriptionNotFound(f"No webhook subscription {sub_id!r}.")
        return self._subscription(row)

    def list(self, on_corrupt=None):
        return [self._subscription(row) for row in self.store._all(
            f"SELECT {self._DEFINITION} FROM medkb_webhooks ORDER BY created_at, id")]

    def remove(self, sub_id):
        subscription = self.get(sub_id)
        with self.store._connection() as connection, connection.transaction():
            connection.execute("DELETE FROM medkb_webhooks WHERE id = %s", (sub_id,))
            connection.execute("UPDATE medkb_webhooks_version SET version = version + 1")
        return subscription

    def exists(self, sub_id):
        try:
            return self.store._one("SELECT 1 FROM medkb_webhooks WHERE id = %s", (self._checked(sub_id),)) is not None
        except SubscriptionNotFound:
            return False

    def state_stamp(self, sub_id):
        row = self.store._one("SELECT state_version FROM medkb_webhooks WHERE id = %s", (self._checked(sub_id),))
        return row[0] if row else None

    def state(self, sub_id):
        row = self.store._one("SELECT state FROM medkb_webhooks WHERE id = %s", (self._checked(sub_id),))
        if row is None:
            raise SubscriptionNotFound(f"No webhook subscription {sub_id!r}.")
        return DeliveryState(**row[0])

    def update_state(self, sub_id, change):
        with self.store._connection() as connection, connection.transaction():
            row = connection.execute("SELECT state FROM medkb_webhooks WHERE id = %s FOR UPDATE",
                                     (self._checked(sub_id),)).fetchone()
            if row is None:
                raise SubscriptionNotFound(f"No webhook subscription {sub_id!r}.")
            state = DeliveryState(**row[0])
            change(state)
            connection.execute("UPDATE medkb_webhooks SET state = %s::json, state_version = state_version + 1 "
                               "WHERE id = %s", (_json(asdict(state)), sub_id))
            return state

    @contextmanager
    def lease(self, sub_id):
        self._checked(sub_id)
        with _connect(self.store.url, autocommit=True) as connection, database_errors(self.store.url):
            held = connection.execute("SELECT pg_try_advisory_lock(%s::integer, hashtext(%s))",
                                      (WEBHOOK_LEASES, sub_id)).fetchone()[0]
            yield held
            # Closing the session releases the lease.

    def append_log(self, sub_id, entry):
        try:
            with self.store._connection() as connection:
                connection.execute("INSERT INTO medkb_webhook_attempts (subscription, entry) VALUES (%s, %s::json)",
                                   (sub_id, _json(entry)))
        except pg_errors.ForeignKeyViolation:
            pass  # removed while it was being delivered: its log went with it

    def log(self, sub_id, limit=100):
        self.get(sub_id)
        return [row[0] for row in self.store._all("SELECT entry FROM medkb_webhook_attempts WHERE subscription = %s "
                                                  "ORDER BY attempt DESC LIMIT %s", (sub_id, limit))]


class PostgresSessionStore:
    """Console sessions in a table: SessionStore's interface (sessions.py), shared by every node."""

    def __init__(self, store, lifetime=SESSION_LIFETIME):
        self.store = store
        self.lifetime = lifetime

    @staticmethod
    def _hash(session_id):
        return hashlib.sha256(session_id.encode("ascii")).hexdigest()

    def create(self, key):
        session_id = secrets.token_urlsafe(32)
        expires = datetime.datetime.now(datetime.UTC) + self.lifetime
        session = Session(key.id, key.name, key.role, secrets.token_urlsafe(32), session_utc(expires))
        with self.store._connection() as connection:
            connection.execute("INSERT INTO medkb_console_sessions (id_sha256, session, expires_at) "
                               "VALUES (%s, %s::json, %s)", (self._hash(session_id), _json(asdict(session)), expires))
            # Abandoned sessions go as others sign in: an indexed range, no scan.
            connection.execute("DELETE FROM medkb_console_sessions WHERE expires_at <= now()")
        return session_id, session

    def get(self, session_id):
        if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
            return None
        row = self.store._one("SELECT session FROM medkb_console_sessions WHERE id_sha256 = %s AND expires_at > now()",
                              (self._hash(session_id),))
        return Session(**row[0]) if row else None

    def delete(self, session_id):
        if isinstance(session_id, str) and SESSION_ID.fullmatch(session_id):
            with self.store._connection() as connection:
                connection.execute("DELETE FROM medkb_console_sessions WHERE id_sha256 = %s", (self._hash(session_id),))


# --- schema ---------------------------------------------------------------------

def migrations():
    """(version, name, SQL) of every migration shipped, in order."""
    found = []
    for entry in resources.files("api.store.migrations").iterdir():
        match = _MIGRATION_FILE.fullmatch(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort()
    if [version for version, _, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..{len(found)}")
    return found


LATEST = len(migrations())


def _connect(url, **kwargs):
    parse_url(url)
    with database_errors(url):
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, **kwargs)


def schema_version(connection):
    """The version the database's schema is at; 0 when it holds no medkb schema."""
    present = connection.execute("SELECT to_regclass('medkb_schema_version')").fetchone()[0]
    if present is None:
        return 0
    return connection.execute("SELECT coalesce(max(version), 0) FROM medkb_schema_version").fetchone()[0]


def require_current_schema(url):
    with _connect(url, autocommit=True) as connection, database_errors(url):
        version = schema_version(connection)
    if version == 0:
        raise SchemaMismatch(f"{describe(url)}: holds no medkb schema; run `medkb db init`.")
    if version < LATEST:
        raise SchemaMismatch(f"{describe(url)}: schema is at version {version}, this medkb needs {LATEST}; "
                             "run `medkb db migrate`.")
    if version > LATEST:
        raise SchemaMismatch(f"{describe(url)}: schema is at version {version}, newer than this medkb knows "
                             f"({LATEST}); upgrade medkb.")


def migrate(url):
    """Apply every migration the database has not had, in one transaction, under a lock (two
    migrating processes never interleave). Returns (version before, [(version, name) applied])."""
    with _connect(url) as connection, database_errors(url):
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATIONS_LOCK,))
            connection.execute("CREATE TABLE IF NOT EXISTS medkb_schema_version (version integer PRIMARY KEY, "
                               "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            before = schema_version(connection)
            if before > LATEST:
                raise SchemaMismatch(f"{describe(url)}: schema is at version {before}, newer than this medkb "
                                     f"knows ({LATEST}); upgrade medkb.")
            applied = []
            for version, name, statements in migrations()[before:]:
                connection.execute(statements)
                connection.execute("INSERT INTO medkb_schema_version (version, name) VALUES (%s, %s)", (version, name))
                applied.append((version, name))
    return before, applied


def create_database(url):
    """Create the database `url` names, if it does not exist, connecting to the server's
    `postgres` database to do it. Returns True when it created it."""
    name = parse_url(url).get("dbname")
    if not name:
        return False
    maintenance = make_conninfo(url, dbname="postgres")
    with _connect(maintenance, autocommit=True) as connection, database_errors(url):
        if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


__all__ = ["PostgresStore", "DatabaseUnavailable", "CommitOutcomeUnknown", "DatabaseFull", "SchemaMismatch", "InvalidDatabaseUrl", "migrate", "create_database",
           "migrations", "LATEST", "describe"]
