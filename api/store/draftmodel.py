"""The read model's counterpart for preview: every live head revision, drafts included.

Same interface as ReadModel, so the delivery service and resources serve previews unchanged.
Editorial traffic must see its own edits at once, so every refresh checks head.json; when the
store moved, it replays the changes since its last look and reloads only the documents they
touched (drafts and transitions included). The whole store is read once, on first use.
"""
import orjson

from schemas import DOCUMENT_TYPES

from api.store.readmodel import Published


class DraftModel:
    def __init__(self, store):
        self.store = store
        self._stamp = object()
        self.version = 0
        self.seq = 0
        self.published_seq = 0
        self.last_publication_seq = {}
        self._by_id = None  # type -> {id: Published}, built on first use
        self._sorted = {}

    def refresh(self, force=False):
        stamp = self.store.head_stamp()
        if stamp == self._stamp:
            return
        last = self.store.last_seq()
        if self._by_id is None:
            self._by_id = {type_name: {} for type_name in DOCUMENT_TYPES}
            for state, head, _ in self.store.entries():
                self._put(state.type, state.id, head)
        else:
            for key in {(change.type, change.id) for change in self.store.changes(self.seq, limit=last - self.seq)}:
                self._put(*key, self.store.head(*key))
        self._stamp, self.seq, self.version = stamp, last, self.version + 1
        self.published_seq = last  # previews follow drafts too

    def _put(self, type_name, id_, head):
        table = self._by_id[type_name]
        if head is None or head.deleted:
            table.pop(id_, None)
        else:
            table[id_] = Published(head.content, orjson.dumps(head.content), head.hash, head.revision)
        self._sorted.pop(type_name, None)

    def get(self, type_name, id_):
        return self._by_id[type_name].get(id_)

    def all(self, type_name):
        ordered = self._sorted.get(type_name)
        if ordered is None:
            table = self._by_id[type_name]
            ordered = self._sorted[type_name] = [table[id_] for id_ in sorted(table)]
        return ordered

    def count(self):
        return sum(len(table) for table in self._by_id.values())
