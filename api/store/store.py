"""The versioned document store, on plain files. No Flask, and nothing above this layer: callers
validate documents; the store persists them, numbers every change and never loses one.

`Store` is a small facade over the file layout (layout.py), the commit protocol and its recovery
(journal.py), the upgrade of older layouts (upgrade.py) and verification (verify.py).
"""
import errno
import os
import re
import threading
from contextlib import contextmanager, nullcontext

from filelock import FileLock, Timeout

from schemas import DOCUMENT_TYPES
from schemas.fields import SLUG_MAX_LENGTH, SLUG_PATTERN

from api.store import journal, upgrade
from api.store.base import StoreBackend
from api.store.indexes import Indexes
from api.store.layout import PREVIOUS_POINTERS, Layout, read_log
from api.store.records import (NEW_REVISION, PUBLICATION_KINDS, Change, Commit, Conflict, DocumentState, NotFound,
                               Revision, StorageError, StorageFull, StorageUnavailable, StoreError, Unpublishable,
                               content_hash, storage_error)
from api.store.storage import StoreCorrupt, read_json_file

# Reads of a document's pointers that may race with commits landing; past this many, the
# pointers are not racing but ahead of head.json: the store is damaged.
POINTER_READS = 1000
_DOCUMENT_ID = re.compile(f"(?=.{{1,{SLUG_MAX_LENGTH}}}$){SLUG_PATTERN.strip('^$')}")

__all__ = ["Store", "Commit", "Change", "Revision", "DocumentState", "StoreError", "NotFound", "Conflict",
           "Unpublishable", "StorageError", "StorageFull", "StorageUnavailable", "StoreCorrupt", "NEW_REVISION",
           "PUBLICATION_KINDS", "content_hash"]


class Store(StoreBackend):
    def __init__(self, root, *, durable=True):
        """Open (creating if needed) the store at `root`: upgrade an older layout, roll back an
        interrupted commit when no writer is at work, and check that head.json and the log
        commits append to parse. Opening reads no document and waits for no writer: a damaged
        pointers file is named when that document is read, and by `verify`. Raises StoreCorrupt
        naming the first bad file, StorageError when the disk fails."""
        self.layout = Layout(root)
        self.root = self.layout.root
        self.durable = durable
        self._committed = 0  # the highest committed change this process has seen; never goes down
        self.commits = 0  # commits made through this object: lets this process read its own writes at once
        self._local = threading.local()
        self.indexes = Indexes(self.root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # exist_ok covers folders only
            raise StoreError(f"{self.root}: is a file, not a store folder; nothing was changed.") from None
        # A store on a read-only file system (a backup, a snapshot) can still be checked and
        # exported: nobody can write it, so reads need no lock and there is nothing to tidy.
        self.read_only = bool(os.statvfs(self.root).f_flag & os.ST_RDONLY)
        try:
            if not self.read_only:
                # Created here, so that a folder that cannot hold it is an error now: filelock takes
                # ENOENT on creating it (a /proc folder answers so) for contention and waits forever.
                os.close(os.open(self.layout.lock_path, os.O_RDWR | os.O_CREAT, 0o644))
            self._lock = FileLock(str(self.layout.lock_path))
            if upgrade.needed(self.layout):
                if self.read_only:
                    raise StoreError(f"{self.root}: is in an older layout on a read-only file system, where it "
                                     f"cannot be upgraded; copy it to a writable folder first.")
                with self._lock:  # upgrade first: recovery reads the current layout's pending record
                    if upgrade.needed(self.layout):
                        upgrade.upgrade(self.layout)
            if not self.read_only:
                self._tidy_if_idle()
            self._check_files_parse()
        except OSError as error:
            raise storage_error(error) from None

    # --- reading -------------------------------------------------------------

    def last_seq(self):
        seq = self.layout.read_head().get("seq", 0)
        self._committed = max(self._committed, seq)
        return seq

    def head_stamp(self):
        """Changes whenever a commit lands: a cheap 'did anything move?' check for readers."""
        try:
            stat = self.layout.head_path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _pointers(self, type_name, id_):
        """The document's committed pointers: those of a commit still in flight (or one that
        failed and awaits its rollback) are not believed; the previous ones are."""
        if type_name not in DOCUMENT_TYPES or not _DOCUMENT_ID.fullmatch(id_ if isinstance(id_, str) else ""):
            return None  # no document has that name, and it may not even be a file name (NUL, 255+ bytes)
        for _ in range(POINTER_READS):
            pointers = self.layout.read_pointers(type_name, id_)
            if pointers is None or pointers.get("last_seq", 0) <= self._committed:
                return pointers
            committed = self.last_seq()
            if pointers.get("last_seq", 0) <= committed:
                return pointers
            previous = read_json_file(self.layout.document_file(type_name, id_, PREVIOUS_POINTERS))
            if previous is not None and previous.get("last_seq", 0) <= committed:
                return previous
            if previous is None and self.layout.read_pointers(type_name, id_) == pointers:
                return None  # a new document whose first commit is not committed
            # Another commit landed or rolled back between our reads: look again.
        raise StoreCorrupt(self.layout.pointers_path(type_name, id_),
                           f"it and the previous pointers record changes past the store's last, {self.last_seq()}")

    def state(self, type_name, id_):
        pointers = self._pointers(type_name, id_)
        return DocumentState.from_pointers(type_name, id_, pointers) if pointers else None

    state_from_pointers = staticmethod(DocumentState.from_pointers)

    def _revision(self, type_name, id_, number):
        path = self.layout.document_file(type_name, id_, f"{number}.json")
        row = read_json_file(path)
        if row is None:
            raise StoreCorrupt(path, f"revision {number} is missing")
        return Revision(type_name, id_, row["revision"], row["content"], row["hash"], row["actor"], row["at"],
                        row["message"], row["seq"])

    def revision(self, type_name, id_, number):
        pointers = self._pointers(type_name, id_)
        if not pointers or not 1 <= number <= pointers["head"]:
            return None
        return self._revision(type_name, id_, number)

    def revisions(self, type_name, id_):
        pointers = self._pointers(type_name, id_)
        return [self._revision(type_name, id_, n) for n in range(1, pointers["head"] + 1)] if pointers else []

    def head(self, type_name, id_):
        """The latest revision (a draft, the published one, or a deletion tombstone)."""
        pointers = self._pointers(type_name, id_)
        return self._revision(type_name, id_, pointers["head"]) if pointers else None

    def published(self, type_name, id_):
        pointers = self._pointers(type_name, id_)
        if not pointers or not pointers.get("published"):
            return None
        return self._revision(type_name, id_, pointers["published"])

    def keys(self, type_name=None):
        for name in [type_name] if type_name else DOCUMENT_TYPES:
            try:
                entries = os.scandir(self.layout.documents / name)
            except FileNotFoundError:
                continue
            with entries:
                ids = sorted(entry.name for entry in entries if entry.is_dir() and not entry.name.startswith("."))
            for id_ in ids:
                yield name, id_

    def entries(self, type_name=None):
        """(state, head revision, published revision or None) of every document."""
        return self.entries_of(self.keys(type_name))

    def entries_of(self, keys):
        for name, id_ in keys:
            pointers = self._pointers(name, id_)
            if pointers:
                head, published = pointers["head"], pointers.get("published")
                head_revision = self._revision(name, id_, head)
                # Most documents' head is their published revision: read once.
                published_revision = head_revision if published == head else \
                    self._revision(name, id_, published) if published else None
                yield DocumentState.from_pointers(name, id_, pointers), head_revision, published_revision

    def states(self, type_name=None):
        for name, id_ in self.keys(type_name):
            state = self.state(name, id_)
            if state:
                yield state

    def changes(self, since=0, limit=None):
        """Committed changes with seq > since, in order: reads only the segments that hold them."""
        last = self.last_seq()
        result, seq = [], since + 1
        while seq <= last and (limit is None or len(result) < limit):
            path = self.layout.change_log(seq)
            rows = read_log(path)
            first = self.layout.first_in_segment(self.layout.segment(seq))
            end = min(last, self.layout.first_in_segment(self.layout.segment(seq) + 1) - 1)
            while seq <= end and (limit is None or len(result) < limit):
                row = rows[seq - first] if seq - first < len(rows) else None
                if row is None or row["seq"] != seq:
                    raise StoreCorrupt(path, f"change {seq} is missing")
                result.append(Change(**row))
                seq += 1
        return result

    def publications(self, since=0, until=None):
        """Committed publish/unpublish/delete changes with since < seq <= until (default: the
        last committed), from the publication log: drafts and transitions are never read."""
        until = self.last_seq() if until is None else until
        result = []
        if until <= since:
            return result
        for segment in range(self.layout.segment(since + 1), self.layout.segment(until) + 1):
            for row in read_log(self.layout.publication_log(self.layout.first_in_segment(segment))):
                if since < row["seq"] <= until:
                    result.append(Change(**row))
        return result

    # --- writing -------------------------------------------------------------

    @contextmanager
    def writing(self):
        """Hold the cross-process writer lock (re-entrant). Whatever is read inside is what a
        commit made inside will be checked against: validate references here, race-free."""
        if self.read_only:
            raise StorageUnavailable(OSError(errno.EROFS, "on a read-only file system", str(self.root)))
        try:
            self._lock.acquire()
        except OSError as error:  # the lock file cannot be opened: a read-only or failing store folder
            raise storage_error(error) from None
        try:
            depth = getattr(self._local, "depth", 0)
            self._local.depth = depth + 1
            try:
                if depth == 0:
                    try:
                        journal.recover(self.layout, self.durable)
                    except OSError as error:
                        raise storage_error(error) from None
                    self.last_seq()
                    self.indexes.catch_up(self)
                yield self
            finally:
                self._local.depth = depth
        finally:
            self._lock.release()

    def _checked(self, commit, known_absent=False):
        """The document's committed pointers, once the commit's expectations hold on them."""
        pointers = {} if known_absent else self._pointers(commit.type, commit.id) or {}
        self.check_commit(commit, pointers)
        return pointers

    def commit(self, commit: Commit):
        """Persist one already-validated change; returns its Change once it is durable."""
        with self.writing():
            pointers = self._checked(commit)
            change = journal.commit(self.layout, commit, pointers, self.last_seq(), self.durable)
            self._committed = max(self._committed, change.seq)
            self.commits += 1
            self.indexes.record(self, [(commit, pointers, change)])
            return change

    def commit_batch(self, commits):
        """Persist several already-validated changes, each to a different document, all or none,
        with one durable commit point (import). Returns their Changes."""
        if len({(c.type, c.id) for c in commits}) != len(commits):
            raise ValueError("a batch changes each document at most once")
        if not commits:
            return []
        with self.writing():
            # An import's documents are mostly new: the index says which, without a file read each.
            known = self.indexes.known_documents(self, [(c.type, c.id) for c in commits])
            items = [(commit, self._checked(commit, known is not None and (commit.type, commit.id) not in known))
                     for commit in commits]
            changes = journal.commit_batch(self.layout, items, self.last_seq(), self.durable)
            self._committed = max(self._committed, changes[-1].seq)
            self.commits += 1
            self.indexes.record(self, [(commit, pointers, change) for (commit, pointers), change in zip(items, changes)])
            return changes

    def index(self):
        """The indexes (indexes.py), caught up with every committed change."""
        return self.indexes.current(self)

    # --- opening and checks --------------------------------------------------

    def _tidy_if_idle(self):
        """Roll back a commit a dead writer left pending and remove its temporary files, if no
        writer holds the lock now: otherwise that writer does it, and opening does not wait."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return
        try:
            journal.recover(self.layout, self.durable)
            # A writer killed inside atomic_write leaves its temporary file; holding the lock, no
            # write is in progress, so none is still wanted. The commit in flight, if any, named
            # its document folder, and recovery cleaned it. keys.json beside them has its own writers.
            for pattern in (".head.json.*.tmp", "changes/.*.tmp", "publications/.*.tmp"):
                for path in self.root.glob(pattern):
                    path.unlink(missing_ok=True)
        finally:
            self._lock.release()

    def _check_files_parse(self):
        """head.json and the log segments commits append to. A writer may be appending the next
        change meanwhile: lines past the committed end are not counted against it."""
        last = self.last_seq()
        if last:
            path = self.layout.change_log(last)
            rows = read_log(path)
            expected = last - self.layout.first_in_segment(self.layout.segment(last)) + 1
            if len(rows) < expected or rows[expected - 1]["seq"] != last:
                raise StoreCorrupt(path, f"holds {len(rows)} changes where {expected} were committed")
            read_log(self.layout.publication_log(last))

    def verify(self):
        """Every revision's hash and number, every pointer, and the change sequence: a list of
        problems. Holds the writers' lock meanwhile (writes wait): read while commits land, the
        logs and pointers would disagree without anything being wrong."""
        from api.store.verify import verify

        with nullcontext() if self.read_only else self.writing():
            return verify(self)
