"""Published documents, held in memory and pre-serialized, in every process.

Delivery reads never touch the store files. Each read first asks `refresh()`,
which looks at head.json (one stat()) at most every CHECK_INTERVAL seconds;
when a commit has landed in any process it replays only the new changes. So a
publish in one worker is visible in all of them within CHECK_INTERVAL, and a
read costs a clock read and a dict lookup whatever the size of the set.

Replaying reads only the publication log (publish, unpublish, delete): drafts and workflow
transitions never reach delivery, so a busy editorial day costs the readers nothing.
"""
import bisect
import threading
import time
from dataclasses import dataclass

import orjson

from schemas import DOCUMENT_TYPES

CHECK_INTERVAL = 0.1  # seconds; DESIGN asks for a publish to reach every worker within a second


@dataclass(frozen=True, slots=True)
class Published:
    document: dict
    body: bytes  # the document as JSON, serialized once
    etag: str    # the revision's content hash
    revision: int


class ReadModel:
    def __init__(self, store, check_interval=CHECK_INTERVAL, references=None):
        """references(document) yields the (field, type, id) a document points at: given, it keeps
        an index of which published documents refer to each document, updated per change."""
        self.store = store
        self.check_interval = check_interval
        self._references = references
        self._referrers = {}  # (type, id) -> {(type, id) of published documents that refer to it}
        self._refers_to = {}  # (type, id) -> the targets a published document refers to
        self._lock = threading.Lock()
        self._documents = {type_name: {} for type_name in DOCUMENT_TYPES}
        self._sorted = {}
        self.version = 0  # bumps whenever the published set changes; caches key on it
        # Stamp and number first: a commit landing during the scan is replayed by the next refresh.
        self._stamp = store.head_stamp()
        self._checked_at = time.monotonic()
        self._commits_seen = store.commits
        self.seq = store.last_seq()
        # The change that last published, unpublished or deleted each document: the feed
        # skips older ones, which a later change has superseded. `_feed` holds just those
        # changes' numbers, sorted, so a feed page starts with one bisect whatever the history.
        self.last_publication_seq = {}
        self._feed_entries = {}  # seq -> (type, id, kind)
        for state, _, published in store.entries():
            if state.publication_seq:
                kind = "delete" if state.deleted else "publish" if state.published else "unpublish"
                self.last_publication_seq[(state.type, state.id)] = state.publication_seq
                self._feed_entries[state.publication_seq] = (state.type, state.id, kind)
            self._put(state.type, state.id, published)
        self._feed = sorted(self._feed_entries)
        # The last change that published, unpublished or deleted anything: what public tags and
        # feed cursors follow, so that draft edits move none of them.
        self.published_seq = max(self.last_publication_seq.values(), default=0)

    def _put(self, type_name, id_, revision):
        table = self._documents[type_name]
        if revision is None:
            table.pop(id_, None)
        else:
            table[id_] = Published(revision.content, orjson.dumps(revision.content), revision.hash, revision.revision)
        self._sorted.pop(type_name, None)
        if self._references is not None:
            self._index_references((type_name, id_), revision.content if revision else None)

    def _index_references(self, key, document):
        for target in self._refers_to.pop(key, ()):
            self._referrers[target].discard(key)
        if document is not None:
            targets = {(target_type, target_id) for _, target_type, target_id in self._references(document)}
            targets.discard(key)
            self._refers_to[key] = targets
            for target in targets:
                self._referrers.setdefault(target, set()).add(key)

    def referrers(self, type_name, id_):
        """The published documents that refer to this one, as sorted "type/id" strings."""
        return sorted(f"{t}/{i}" for t, i in self._referrers.get((type_name, id_), ()))

    def _load(self, type_name, id_):
        self._put(type_name, id_, self.store.published(type_name, id_))

    def refresh(self, force=False):
        """Catch up with commits made by any process: at most every check_interval, but at once after
        a commit of this process (a writer reads its own writes) or when `force`d."""
        now = time.monotonic()
        own_commit = self.store.commits != self._commits_seen  # this process wrote: read it at once
        if not (force or own_commit) and now - self._checked_at < self.check_interval:
            return
        self._commits_seen = self.store.commits
        self._checked_at = now
        stamp = self.store.head_stamp()
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            last = self.store.last_seq()
            touched = self._note_publications(self.store.publications(self.seq, last))
            for type_name, id_ in touched:
                self._load(type_name, id_)
            self.seq = last
            if touched:
                self.version += 1
            self._stamp = stamp

    def _note_publications(self, changes):
        touched = set()
        if not changes:
            return touched
        feed = list(self._feed)  # a new list: a feed page being read keeps its snapshot
        for change in changes:
            key = (change.type, change.id)
            superseded = self.last_publication_seq.get(key)
            if superseded is not None:
                del feed[bisect.bisect_left(feed, superseded)]
                del self._feed_entries[superseded]
            self.last_publication_seq[key] = change.seq
            self._feed_entries[change.seq] = (change.type, change.id, change.kind)
            feed.append(change.seq)  # changes come in order, each newer than all before
            self.published_seq = change.seq
            touched.add(key)
        self._feed = feed
        return touched

    def publications_after(self, since):
        """(seq, type, id, kind) of each document's latest publication change after `since`, in order."""
        # A refresh replaces the list, so this one stays whole; an entry it drops meanwhile was
        # superseded, and skipping it is what the feed does anyway.
        feed, entries = self._feed, self._feed_entries
        for index in range(bisect.bisect_right(feed, since), len(feed)):
            seq = feed[index]
            found = entries.get(seq)
            if found is not None:
                yield (seq, *found)

    def get(self, type_name, id_):
        return self._documents[type_name].get(id_)

    def all(self, type_name):
        """Published documents of a type, ordered by id."""
        ordered = self._sorted.get(type_name)
        if ordered is None:
            table = self._documents[type_name]
            ordered = self._sorted[type_name] = [table[id_] for id_ in sorted(table)]
        return ordered

    def count(self):
        return sum(len(table) for table in self._documents.values())
