"""The read model's counterpart for preview: every live head revision, drafts included.

Same interface as ReadModel, so the delivery service and resources serve previews unchanged.
Rebuilt whenever the store moves: editorial traffic is light and must see its own edits at once.
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
        self._documents = {type_name: [] for type_name in DOCUMENT_TYPES}
        self._by_id = {type_name: {} for type_name in DOCUMENT_TYPES}

    def refresh(self, force=False):
        stamp = self.store.head_stamp()
        if stamp == self._stamp:
            return
        documents = {type_name: {} for type_name in DOCUMENT_TYPES}
        for state, head, _ in self.store.entries():
            if not head.deleted:
                documents[state.type][state.id] = Published(head.content, orjson.dumps(head.content), head.hash,
                                                            head.revision)
        self._documents = {name: [table[id_] for id_ in sorted(table)] for name, table in documents.items()}
        self._by_id = documents
        self._stamp, self.seq, self.version = stamp, self.store.last_seq(), self.version + 1
        self.published_seq = self.seq

    def get(self, type_name, id_):
        return self._by_id[type_name].get(id_)

    def all(self, type_name):
        return self._documents[type_name]

    def count(self):
        return sum(len(table) for table in self._documents.values())
