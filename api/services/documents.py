"""Documents as a service: validation, writes, deletion and import over the store.

The store persists; this decides what may be persisted. Every check that depends on other
documents (references, referrers, what an import would overwrite) runs inside the store's writer
lock, so no other process can change the answer before the commit lands.
"""
from dataclasses import dataclass, field

from schemas import DOCUMENT_TYPES

from api.knowledge.documents import InvalidDocument, load_document, reference_errors, references
from api.store.store import NEW_REVISION, Commit, NotFound, content_hash

FORCE_FLAG = "--force-revert"
# Documents per durable commit point on import: each batch is all or nothing, and costs two
# fsyncs and a sync of the file system however many files it writes. Smaller sets get smaller
# batches, so that progress moves.
IMPORT_BATCH = 1000
MIN_IMPORT_BATCH = 50


@dataclass(frozen=True)
class Refusal:
    """An imported file the store has moved past: applying it would undo an editor's work."""

    key: str
    file_revision: int
    head: int
    published: int | None
    deleted: bool

    def __str__(self):
        where = "deleted" if self.deleted else f"published {self.published}" if self.published else "not published"
        if isinstance(self.file_revision, int) and self.file_revision > self.head:
            # Exported from another store: an import numbers a document's revisions from 1.
            return (f"file is at revision {self.file_revision}, ahead of the store's revision {self.head} ({where}): "
                    f"it comes from another store, whose revision numbers this one does not share; export from "
                    f"this store and edit that, or pass {FORCE_FLAG} to replace the store's version with the file")
        return (f"file is at revision {self.file_revision}, store is at revision {self.head} ({where}); "
                f"export first, or pass {FORCE_FLAG} to replace the store's version with the file")


@dataclass
class ImportResult:
    written: list = field(default_factory=list)    # the Changes made
    unchanged: list = field(default_factory=list)  # keys equal to the store's published revision
    refused: list = field(default_factory=list)    # Refusals, nothing of them applied


class Documents:
    def __init__(self, store):
        self.store = store

    # --- validation -----------------------------------------------------------

    def lookup_head(self, type_name, id_):
        """The live head document, or None: what references are checked against."""
        if type_name not in DOCUMENT_TYPES:
            return None
        head = self.store.head(type_name, id_)
        return head.content if head and not head.deleted else None

    def validate(self, content):
        """Migrate and validate a document against the schemas and the store's other documents.
        Returns the migrated document or raises InvalidDocument."""
        document, errors = load_document(content)
        key = f"{document.get('type')}/{document.get('id')}"
        if not errors:
            errors = reference_errors(document, self.lookup_head)
        if errors:
            raise InvalidDocument(key, errors)
        return document

    # --- writing ----------------------------------------------------------------

    def write(self, content, *, expected_revision, actor, message="", publish=False, workflow=None, check=None,
              details=None):
        """Validate and store `content` as the next revision of its document.

        expected_revision: the head the caller saw (0 for a new document); None skips the check.
        publish: also move the published pointer to the new revision.
        check(pointers): called under the lock with the current pointers; raise to refuse.
        """
        with self.store.writing():
            document = self.validate(content)
            return self.store.commit(self._revision_commit(document, expected_revision, actor, message, publish,
                                                           workflow, check, details))

    @staticmethod
    def _revision_commit(document, expected_revision, actor, message, publish, workflow=None, check=None,
                         details=None):
        if publish and workflow is None:
            workflow = {"state": "published"}  # an import publishes outright
        pointers = {"deleted": False, **({"workflow": workflow} if workflow is not None else {})}
        if publish:
            pointers["published"] = NEW_REVISION
        return Commit(document["type"], document["id"], "publish" if publish else "revision", actor, message,
                      details, expected_revision, content=document, pointers=pointers, check=check)

    def set_pointers(self, type_name, id_, *, expected_revision, changes, kind, actor, message="", check=None,
                     details=None):
        """Move pointers without a new revision: publish, unpublish, workflow transitions.
        check(pointers): called under the lock with the current pointers; raise to refuse."""
        return self.store.commit(Commit(type_name, id_, kind, actor, message, details, expected_revision,
                                        pointers=changes, check=check))

    def delete(self, type_name, id_, *, expected_revision, actor, message=""):
        """Add a tombstone revision and withdraw the document; its history stays readable.
        Refused while other live documents refer to it."""
        with self.store.writing():
            state = self.store.state(type_name, id_)
            if not state or state.deleted:
                raise NotFound(f"{type_name}/{id_} does not exist.")
            # Reads every live document: deletion is rare and offline-ish; a referrer index would
            # be needed before it goes on a busy path.
            referrers = sorted(f"{t}/{i}" for (t, i), content in self._live_heads()
                               if any((rt, ri) == (type_name, id_) for _, rt, ri in references(content)))
            if referrers:
                raise InvalidDocument(f"{type_name}/{id_}", [("id", f"is still referred to by {', '.join(referrers)}.")])
            return self.store.commit(Commit(type_name, id_, "delete", actor, message, None, expected_revision,
                                            tombstone=True, pointers={"published": None, "deleted": True}))

    def _live_heads(self):
        for state, head, _ in self.store.entries():
            if not head.deleted:
                yield (state.type, state.id), head.content

    # --- import -----------------------------------------------------------------

    def import_(self, documents, *, actor="import", message="", notes=None, force=False, progress=None, loaded=None):
        """Bring a set of documents (which may refer to each other) into the store, published.

        Each document carries the revision it was exported at. The store is the source of truth:
        a document the store has moved past that revision (a newer revision, an unpublish, a
        draft, a deletion) is refused and nothing of it applied, unless `force`, and then the
        change says so. A document equal to the store's published revision changes nothing.
        `loaded`: the LoadedSet the documents come from, checked by load_set (each on its own,
        and against the set, or the store where the set lacks a reference), so only their
        references are checked again, now against the store under the writer lock.
        The whole applicable set is validated, with the store, before anything is written; it
        is then committed in batches of up to IMPORT_BATCH documents, each all or nothing.
        `notes` ("type/id" -> text) adds to the message of that document's change only: a note on
        every change of a large import would repeat across the audit log."""
        if loaded is not None and loaded.problems:  # its checks failed: nothing of it may be written
            problem = loaded.problems[0]
            raise InvalidDocument(problem.where, [(problem.field, problem.message)])
        with self.store.writing():
            batch = {}
            for content in documents:
                document, errors = (content, []) if loaded is not None else load_document(content)
                if errors:
                    raise InvalidDocument(f"{document.get('type')}/{document.get('id')}", errors)
                batch[(document["type"], document["id"])] = document
            result, plan = ImportResult(), []
            empty = not self.store.last_seq()  # then every document is new: none need be looked up
            for (type_name, id_), document in batch.items():
                action = "new" if empty else self._plan(type_name, id_, document, force)
                if isinstance(action, Refusal):
                    result.refused.append(action)
                elif action == "unchanged":
                    result.unchanged.append(f"{type_name}/{id_}")
                else:
                    plan.append((action, document))
            applying = {(d["type"], d["id"]): d for _, d in plan}

            def lookup(type_name, id_):
                return applying.get((type_name, id_)) or self.lookup_head(type_name, id_)

            # Loaded documents were checked against their own set, where a lookup outside it is
            # an error unless the store answered it. When all of them apply, every lookup here
            # finds what that check found, unless the store has moved since: then the documents
            # that relied on it are checked again.
            recheck = applying
            if loaded is not None and len(applying) == len(batch):
                moved = any(self.lookup_head(*key.split("/", 1)) != answer for key, answer in loaded.outside.items())
                recheck = {key: applying[key] for key in applying
                           if moved and f"{key[0]}/{key[1]}" in loaded.leaning_outside}
            for (type_name, id_), document in recheck.items():
                errors = reference_errors(document, lookup)
                if errors:
                    raise InvalidDocument(f"{type_name}/{id_}", errors)
            size = max(MIN_IMPORT_BATCH, min(IMPORT_BATCH, len(plan) // 20))
            for start in range(0, len(plan), size):
                chunk = plan[start:start + size]
                result.written.extend(self.store.commit_batch(
                    [self._import_commit(action, document, actor, _with_note(message, document, notes))
                     for action, document in chunk]))
                if progress:
                    progress(len(result.unchanged) + len(result.refused) + start + len(chunk), len(batch))
            if progress and not plan:
                progress(len(batch), len(batch))
            return result

    def _plan(self, type_name, id_, document, force):
        """What importing `document` does: 'unchanged', a Refusal, or how to apply it."""
        state = self.store.state(type_name, id_)
        if state is None:
            return "new"
        published = self.store.published(type_name, id_) if state.published else None
        if published and published.hash == content_hash(document):
            return "unchanged"
        head = self.store.head(type_name, id_)
        if force:
            if not head.deleted and head.hash == content_hash(document):
                return ("publish head", state)
            return ("forced", state)
        file_revision = document.get("revision")
        if not state.deleted and state.head == state.published == file_revision:
            return "edit"
        return Refusal(f"{type_name}/{id_}", file_revision, state.head, state.published, state.deleted)

    def _import_commit(self, action, document, actor, message):
        if action == "new":
            return self._revision_commit(document, 0, actor, message, publish=True)
        if action == "edit":
            return self._revision_commit(document, document["revision"], actor, message, publish=True)
        kind, state = action
        override = (f"{message} ({FORCE_FLAG}: replaced store revision {state.head}, "
                    f"published {state.published or 'none'})").strip()
        details = {"override": FORCE_FLAG, "from_revision": state.head}
        if kind == "publish head":
            return Commit(state.type, state.id, "publish", actor, override, details, state.head,
                          pointers={"published": state.head, "workflow": {"state": "published"}})
        return self._revision_commit(document, state.head, actor, override, publish=True, details=details)


def _with_note(message, document, notes):
    note = (notes or {}).get(f"{document['type']}/{document['id']}")
    return f"{message}; {note}" if note else message
