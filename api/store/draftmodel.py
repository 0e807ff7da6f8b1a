"""The read model's counterpart for preview: every live head revision, drafts included.

Same interface as ReadModel, so the delivery service and resources serve previews unchanged, and
the same file: its HEAD view, built with the published one. Editorial traffic must see its own
edits at once, so every refresh checks the store's head; when it moved, the view applies the
changes since the last one it applied, rereading only the documents they touched.
"""
from api.store.modelfile import ModelBusy, ModelUnwritable
from api.store.readmodel import HEAD, ModelView


class DraftModel(ModelView):
    view = HEAD

    def __init__(self, store, references, path=None):
        super().__init__(store, references, path)
        self._stamp = store.head_stamp()
        self._open()
        self._note_applied()

    def _note_applied(self):
        # Previews follow drafts too: every change moves their tags and cursors.
        self.seq = self.published_seq = self.version = self.applied()

    def refresh(self, force=False):
        stamp = self.store.head_stamp()
        if stamp == self._stamp:
            return
        try:
            self.file.catch_up(self.store, HEAD, self.store.last_seq())
        except ModelBusy:  # held past the busy timeout (a rebuild elsewhere): preview what it has, retry next time
            return
        except ModelUnwritable as failure:
            self.cannot_follow(failure)
            return
        self._cannot_follow = None
        self._note_applied()
        self._stamp = stamp
