"""Every live document's pointers and head revision, in memory: what editorial queues list.

Each document is kept as `describe(state, head)`, worked out once per change to it, so a page
listing thousands of documents builds nothing per document per request.

Built on first use with one read per document (as ReadModel is at start-up); after that, each
`refresh()` is one stat() of head.json when nothing moved, and otherwise re-reads only the
documents named by the changes since (any process's commits). So listing queues costs no file
reads however large the store is.
"""
import threading


def _pair(state, head):
    return state, head


class WorkingSetModel:
    def __init__(self, store, describe=_pair):
        self.store = store
        self.describe = describe
        self._lock = threading.Lock()
        self._entries = None  # {(type, id): describe(DocumentState, head Revision)}
        self._ordered = None
        self._stamp = None
        self.seq = 0

    def refresh(self):
        stamp = self.store.head_stamp()
        if self._entries is not None and stamp == self._stamp:
            return
        with self._lock:
            if self._entries is None:
                # Stamp and number first: a commit landing during the scan is replayed next time.
                self._stamp, self.seq = stamp, self.store.last_seq()
                self._entries = {(state.type, state.id): self.describe(state, head)
                                 for state, head, _ in self.store.entries() if not head.deleted}
                return
            if stamp == self._stamp:
                return
            changes = self.store.changes(self.seq)
            for key in {(change.type, change.id) for change in changes}:
                state, head = self.store.state(*key), self.store.head(*key)
                if state is None or head is None or head.deleted:
                    self._entries.pop(key, None)
                else:
                    self._entries[key] = self.describe(state, head)
            if changes:
                self.seq = changes[-1].seq
                self._ordered = None
            self._stamp = stamp

    def entries(self, type_name=None):
        """What `describe` made of every live document, or of one type, ordered by type and id."""
        self.refresh()
        ordered = self._ordered
        if ordered is None:
            ordered = self._ordered = sorted(self._entries.items())
        return [entry for key, entry in ordered if type_name is None or key[0] == type_name]

    def get(self, type_name, id_):
        """What `describe` made of one live document, or None."""
        self.refresh()
        return self._entries.get((type_name, id_))
