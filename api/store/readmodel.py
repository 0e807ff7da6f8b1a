"""Published documents, pre-serialized, in a file every process shares (modelfile.py).

Delivery reads never touch the store files: a read is one indexed SQLite lookup, so it costs
the same at 100 or 100,000 documents, and no worker holds the published set in its own memory.
Each read first asks `refresh()`, which looks at the store's head (one stat()) at most every
CHECK_INTERVAL seconds; when a commit has landed in any process, the first process to notice
applies the new publication changes to the file and the others find them there. So a publish in
one worker is visible in all of them within CHECK_INTERVAL.

Catching up reads only the publication log (publish, unpublish, delete): drafts and workflow
transitions never reach delivery, so a busy editorial day costs the readers nothing.
"""
import errno
import logging
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager

import orjson

from api.store.modelfile import HEAD, PUBLISHED, ModelBusy, ModelFile, ModelUnwritable, default_path
from api.store.records import StorageError, StorageUnavailable, storage_error

log = logging.getLogger(__name__)

CHECK_INTERVAL = 0.1  # seconds; DESIGN asks for a publish to reach every worker within a second
STORE_RETRY_S = 1.0  # while the store cannot be read: how often one thread looks again
_MAX_ROWS = 2**62


class Published:
    """One delivered document: its bytes as served, its tag and revision; the parsed document on demand."""

    __slots__ = ("body", "etag", "revision", "_document")

    def __init__(self, body, etag, revision):
        self.body = body
        self.etag = etag
        self.revision = revision
        self._document = None

    @property
    def document(self):
        if self._document is None:
            self._document = orjson.loads(self.body)
        return self._document

    @classmethod
    def from_row(cls, row):
        revision, etag, body = row
        return cls(body, etag, revision)


class Listing(Sequence):
    """The documents of one type in id order, read a slice at a time: a page of a list of 100,000
    reads its page, never the other 99,980 (flask-smorest's Page takes len() and a slice)."""

    def __init__(self, file, view, type_name, clauses=()):
        self._file, self._view, self._type, self._clauses = file, view, type_name, clauses

    def __len__(self):
        return self._file.count(self._view, self._type, self._clauses)

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.start or 0, index.stop, index.step or 1
            if step != 1:
                return list(self)[index]
            if start < 0 or (stop is not None and stop < 0):
                start, stop, _ = index.indices(len(self))
            limit = -1 if stop is None else max(0, stop - start)
            return [Published.from_row(row) for row in self._page(start, limit)]
        if index < 0:
            index += len(self)
        rows = self._page(index, 1) if index >= 0 else []
        if not rows:
            raise IndexError(index)
        return Published.from_row(rows[0])

    def _page(self, offset, limit):
        if offset > _MAX_ROWS:  # past any end (page=10**17): SQLite's integers stop at 2**63 - 1
            return []
        return self._file.page(self._view, self._type, offset, min(limit, _MAX_ROWS), self._clauses)

    def __iter__(self):
        return (Published.from_row(row) for row in self._file.iterate(self._view, self._type, self._clauses))


class ModelView:
    """What delivery reads, over one view of the model file: ReadModel (published) and DraftModel
    (heads, for preview) answer the same calls."""

    view = PUBLISHED

    def __init__(self, store, references, path=None):
        self.store = store
        self.file = ModelFile(path or default_path(store), references)
        self._cannot_follow = None  # the failure last logged, until the model catches up again

    def _open(self):
        """Open the file, following the store. If the disk refuses the catch-up, a file already
        built is served as it is, and the next refresh tries again; why the file was rebuilt, or None."""
        try:
            return self.file.open(self.store)
        except ModelUnwritable as failure:
            if not self.file.built():
                raise
            self.cannot_follow(failure)
            return None

    def cannot_follow(self, failure):
        """Note that the model cannot follow the store, its file refusing writes or the store
        reads (logged once until that changes): readers get what it holds, a little behind,
        rather than errors."""
        if str(failure) != self._cannot_follow:
            log.warning("%s; serving what the read model holds until it can catch up", failure)
            self._cannot_follow = str(failure)

    def get(self, type_name, id_):
        row = self.file.get(self.view, type_name, id_)
        return Published.from_row(row) if row else None

    def all(self, type_name):
        """Documents of a type, ordered by id: a lazy sequence."""
        return Listing(self.file, self.view, type_name)

    def matching(self, type_name, clauses):
        """Documents of a type whose LIST_FILTERS terms meet every clause, ordered by id: a lazy
        sequence. A clause is a list of alternatives (name, lower-cased value, prefix?)."""
        return Listing(self.file, self.view, type_name, tuple(clauses))

    def count(self, type_name=None):
        return self.file.count(self.view, type_name)

    def referring(self, type_name, id_, source_type, field):
        """The documents of `source_type` whose `field` ("conditions", "related.product") refers to
        type_name/id_, ordered by id."""
        return [Published.from_row(row) for row in self.file.referring(self.view, type_name, id_, source_type, field)]

    def applied(self):
        return self.file.applied(self.view)


@contextmanager
def published_snapshot(file, batch=16):
    """The published set of a model file as of one moment, for reading it whole a batch at a time:
    (meta, count, documents(type_name)) inside one SQLite read transaction, so a catch-up committed
    meanwhile by any process is seen entirely or not at all. Use it from a thread of its own: the
    transaction holds the thread's connection."""
    with file.reading():
        meta = file.meta()  # the first read: the transaction's snapshot starts here
        yield meta, file.count(PUBLISHED), lambda type_name: (
            Published.from_row(row) for row in file.iterate(PUBLISHED, type_name, batch=batch))


class ReadModel(ModelView):
    def __init__(self, store, references, check_interval=CHECK_INTERVAL, path=None):
        """references(document) yields the (field, type, id) a document points at: the model keeps
        an index of them. path: the model file, by default in the store's folder."""
        super().__init__(store, references, path)
        self.check_interval = check_interval
        self._lock = threading.Lock()
        # Stamp and number first: a commit landing while the file catches up is applied by the next refresh.
        self._stamp = store.head_stamp()
        self._checked_at = time.monotonic()
        self._commits_seen = store.commits
        self.store_unreachable = False  # at the last look: readers then leave looking to a thread of its own
        self.rebuilt = self._open()  # why the file had to be built, or None
        self._note_applied()

    def _note_applied(self):
        meta = self.file.meta()
        self.seq = meta.get("published_applied", 0)
        # The last change that published, unpublished or deleted anything: what public tags and
        # feed cursors follow, so that draft edits move none of them. It is also the version
        # caches key on: it moves whenever the published set does, and is the same in every process.
        self.published_seq = self.version = meta.get("published_seq", 0)

    def refresh(self, force=False):
        """Catch up with commits made by any process: at most every check_interval, but at once after
        a commit of this process (a writer reads its own writes) or when `force`d.

        A reader never waits for another thread's look at the store, and never fails for the
        store: once it could not be read (a database down or out of reach), readers get what the
        model holds and a thread of its own looks again every STORE_RETRY_S, while `force` raises."""
        now = time.monotonic()
        own_commit = self.store.commits != self._commits_seen  # this process wrote: read it at once
        must = force or own_commit
        if not must and now - self._checked_at < self.check_interval:
            return
        if not self._lock.acquire(blocking=must):
            return  # another thread is looking: serve what the model holds meanwhile
        if self.store_unreachable and not must:
            threading.Thread(target=self._look, args=(now, False, False), daemon=True, name="read-model-retry").start()
            return  # that thread releases the lock
        self._look(now, must, force)

    def _look(self, now, wait, force):
        """Look at the store and apply what it committed since (waiting for another process
        applying it when `wait`; raising what stops it when `force`); called holding self._lock,
        which it releases."""
        try:
            self._commits_seen = self.store.commits
            self._checked_at = now
            try:
                stamp = self.store.head_stamp()
                if stamp != self._stamp:
                    # A reader does not queue behind another process applying the same changes: it
                    # serves what it has and looks again at its next check. A writer waits for its own.
                    self.file.catch_up(self.store, PUBLISHED, self.store.last_seq(), wait=wait)
            except ModelBusy as busy:
                if force:  # a check under the store's lock must see everything committed, or fail the commit
                    raise StorageUnavailable(OSError(errno.EBUSY, str(busy))) from None
                return
            except ModelUnwritable as failure:
                if force:
                    raise storage_error(failure.error) from None
                self.cannot_follow(failure)
                return
            except StorageError as failure:
                self.store_unreachable = True
                self._checked_at = time.monotonic() + STORE_RETRY_S - self.check_interval
                if force:
                    raise
                self.cannot_follow(failure)
                return
            self.store_unreachable, self._cannot_follow = False, None
            if stamp != self._stamp:
                self._note_applied()
                self._stamp = stamp
        finally:
            self._lock.release()

    def referrers(self, type_name, id_):
        """The published documents that refer to this one, as sorted "type/id" strings."""
        return [f"{t}/{i}" for t, i in self.file.referrers(PUBLISHED, type_name, id_)]

    def publications_after(self, since):
        """(seq, type, id, kind) of each document's latest publication change after `since`, in order."""
        return self.file.publications_after(since)


__all__ = ["CHECK_INTERVAL", "HEAD", "PUBLISHED", "ModelView", "Published", "ReadModel", "published_snapshot"]
