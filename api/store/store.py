"""The versioned document store, on TinyDB files. No Flask in here.

Layout under the store folder (MEDKB_DB):

    documents/<type>/<id>.json   one TinyDB file per document: every revision, plus its pointers
    changes/<segment>.json       the global change sequence, SEGMENT_SIZE changes per file
    head.json                    the last committed change number and the change in flight
    store.lock                   the cross-process writer lock

A commit rewrites only the one document's file and one change segment, so its
cost does not grow with the size of the knowledge base.

Commit protocol (all under the lock; every file write is atomic and durable):
 1. head.json records the change in flight ("pending");
 2. the document file gets the new revision and pointers in one replace;
 3. the change is appended to its segment;
 4. head.json moves to the new number with nothing pending.
A crash anywhere leaves a pending change; the next opener finishes it if step 2
happened (the document says so in `last_seq`) and forgets it otherwise.
"""
import datetime
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from filelock import FileLock
from tinydb import TinyDB
from tinydb.middlewares import CachingMiddleware
from tinydb.table import Document

from schemas import DOCUMENT_TYPES

from api.knowledge.documents import load_document, reference_errors, references
from api.store.storage import AtomicJSONStorage, StoreCorrupt, read_json_file

SEGMENT_SIZE = 1000
PUBLICATION_KINDS = ("publish", "unpublish", "delete")


class StoreError(Exception):
    pass


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    """The document moved since the caller read it (or exists when it should not)."""

    def __init__(self, key, expected, current):
        super().__init__(f"{key} is at revision {current}, not {expected}.")
        self.key, self.expected, self.current = key, expected, current


class InvalidDocument(StoreError):
    def __init__(self, key, errors):
        self.key, self.errors = key, list(errors)
        super().__init__("; ".join(f"{key}: {field}: {message}" for field, message in self.errors))


class Unpublishable(StoreError):
    pass


@dataclass(frozen=True)
class Revision:
    type: str
    id: str
    revision: int
    content: dict | None  # None for a deletion tombstone
    hash: str | None
    actor: str
    at: str
    message: str
    seq: int

    @property
    def deleted(self):
        return self.content is None


@dataclass(frozen=True)
class Change:
    seq: int
    type: str
    id: str
    revision: int
    kind: str  # revision | publish | unpublish | delete | transition
    actor: str
    at: str
    message: str = ""
    details: dict | None = None  # who and what, for the audit log: role, revisions, states, comment


@dataclass
class DocumentState:
    type: str
    id: str
    head: int
    published: int | None
    deleted: bool
    workflow: dict = field(default_factory=dict)
    last_seq: int = 0
    publication_seq: int = 0  # the change that last published, unpublished or deleted it


def content_hash(document):
    """sha256 of the document's canonical JSON, without `revision` (which the store assigns)."""
    body = {key: value for key, value in document.items() if key != "revision"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def now_iso():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _WriteOnClose(CachingMiddleware):
    """One parse on open and one atomic replace on close, however many table operations
    happen in between: a document's revision and its pointers change together or not at all."""

    WRITE_CACHE_SIZE = float("inf")


def _open(path, durable):
    return TinyDB(path, durable=durable, storage=_WriteOnClose(AtomicJSONStorage))


class Store:
    def __init__(self, root, *, durable=True):
        """Open (creating if needed) the store at `root`: finish or forget an interrupted commit,
        then check every file parses. Raises StoreCorrupt naming the first bad file."""
        self.root = Path(root)
        self.durable = durable
        self.root.mkdir(parents=True, exist_ok=True)
        self.head_path = self.root / "head.json"
        self._lock = FileLock(str(self.root / "store.lock"))
        self.commits = 0  # commits made through this object: lets this process read its own writes at once
        with self._lock:
            self._recover()
            self._remove_orphaned_temporaries()
            self._check_files_parse()

    # --- paths ---------------------------------------------------------------

    def document_path(self, type_name, id_):
        return self.root / "documents" / type_name / f"{id_}.json"

    def segment_path(self, seq):
        return self.root / "changes" / f"{(seq - 1) // SEGMENT_SIZE:08d}.json"

    # --- reading -------------------------------------------------------------

    def last_seq(self):
        head = read_json_file(self.head_path) or {}
        return head.get("seq", 0)

    def head_stamp(self):
        """Changes whenever a commit lands: a cheap 'did anything move?' check for readers."""
        try:
            stat = self.head_path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _read_document_file(self, type_name, id_):
        data = read_json_file(self.document_path(type_name, id_))
        if data is None:
            return None, {}
        pointers = (data.get("pointers") or {}).get("1")
        return pointers, data.get("revisions") or {}

    def state(self, type_name, id_):
        pointers, _ = self._read_document_file(type_name, id_)
        return self.state_from_pointers(type_name, id_, pointers) if pointers else None

    @staticmethod
    def state_from_pointers(type_name, id_, pointers):
        return DocumentState(type_name, id_, pointers["head"], pointers.get("published"), pointers.get("deleted", False),
                             pointers.get("workflow") or {}, pointers.get("last_seq", 0),
                             pointers.get("publication_seq", 0))

    @staticmethod
    def _revision(type_name, id_, row):
        return Revision(type_name, id_, row["revision"], row["content"], row["hash"], row["actor"], row["at"],
                        row["message"], row["seq"])

    def revision(self, type_name, id_, number):
        _, revisions = self._read_document_file(type_name, id_)
        row = revisions.get(str(number))
        return self._revision(type_name, id_, row) if row else None

    def revisions(self, type_name, id_):
        _, revisions = self._read_document_file(type_name, id_)
        return [self._revision(type_name, id_, row) for row in sorted(revisions.values(), key=lambda r: r["revision"])]

    def head(self, type_name, id_):
        """The latest revision (a draft, the published one, or a deletion tombstone)."""
        pointers, revisions = self._read_document_file(type_name, id_)
        return self._revision(type_name, id_, revisions[str(pointers["head"])]) if pointers else None

    def published(self, type_name, id_):
        pointers, revisions = self._read_document_file(type_name, id_)
        if not pointers or not pointers.get("published"):
            return None
        return self._revision(type_name, id_, revisions[str(pointers["published"])])

    def keys(self, type_name=None):
        types = [type_name] if type_name else DOCUMENT_TYPES
        for name in types:
            folder = self.root / "documents" / name
            if folder.is_dir():
                for path in sorted(folder.glob("*.json")):
                    yield name, path.stem

    def entries(self, type_name=None):
        """(state, head revision, published revision or None) of every document, one file read each."""
        for name, id_ in self.keys(type_name):
            pointers, revisions = self._read_document_file(name, id_)
            if pointers:
                published = pointers.get("published")
                yield (self.state_from_pointers(name, id_, pointers),
                       self._revision(name, id_, revisions[str(pointers["head"])]),
                       self._revision(name, id_, revisions[str(published)]) if published else None)

    def states(self, type_name=None):
        for name, id_ in self.keys(type_name):
            state = self.state(name, id_)
            if state:
                yield state

    def changes(self, since=0, limit=None):
        """Committed changes with seq > since, in order."""
        last = self.last_seq()
        result, seq = [], since + 1
        while seq <= last and (limit is None or len(result) < limit):
            rows = (read_json_file(self.segment_path(seq)) or {}).get("_default", {})
            end = min(last, ((seq - 1) // SEGMENT_SIZE + 1) * SEGMENT_SIZE)
            while seq <= end and (limit is None or len(result) < limit):
                row = rows.get(str(seq))
                if row is None:
                    raise StoreCorrupt(self.segment_path(seq), f"change {seq} is missing")
                result.append(Change(**row))
                seq += 1
        return result

    def lookup_head(self, type_name, id_):
        """The live head document, or None: what references are checked against."""
        if type_name not in DOCUMENT_TYPES:
            return None
        head = self.head(type_name, id_)
        return head.content if head and not head.deleted else None

    # --- writing -------------------------------------------------------------

    def validate(self, content, lookup=None):
        """Migrate and validate a document against the schemas and the store's other documents.
        Returns the migrated document or raises InvalidDocument."""
        document, errors = load_document(content)
        key = f"{document.get('type')}/{document.get('id')}"
        if not errors:
            errors = reference_errors(document, lookup or self.lookup_head)
        if errors:
            raise InvalidDocument(key, errors)
        return document

    def write(self, content, *, expected_revision, actor, message="", publish=False, workflow=None, check=None,
              details=None):
        """Validate and store `content` as the next revision of its document.

        expected_revision: the head the caller saw (0 for a new document); None skips the check.
        publish: also move the published pointer to the new revision.
        check(pointers): called under the lock with the current pointers; raise to refuse.
        """
        with self._lock:
            self._recover()
            document = self.validate(content)
            return self._commit_revision(document, expected_revision, actor, message, publish, workflow, check,
                                         details)

    def write_many(self, documents, *, actor, message="", publish=False, skip_unchanged=True, progress=None):
        """Write a set of documents that may refer to each other (import). All are validated,
        together with the store, before anything is written: an invalid set changes nothing.
        Returns the revisions written (unchanged documents are skipped)."""
        with self._lock:
            self._recover()
            batch = {}
            for content in documents:
                document, errors = load_document(content)
                if errors:
                    raise InvalidDocument(f"{document.get('type')}/{document.get('id')}", errors)
                batch[(document["type"], document["id"])] = document

            def lookup(type_name, id_):
                return batch.get((type_name, id_)) or self.lookup_head(type_name, id_)

            for (type_name, id_), document in batch.items():
                errors = reference_errors(document, lookup)
                if errors:
                    raise InvalidDocument(f"{type_name}/{id_}", errors)
            written = []
            for done, ((type_name, id_), document) in enumerate(batch.items(), 1):
                head = self.head(type_name, id_)
                unchanged = head and not head.deleted and head.hash == content_hash(dict(document, revision=head.revision))
                if unchanged and skip_unchanged:
                    state = self.state(type_name, id_)
                    if not publish or state.published == head.revision:
                        if progress:
                            progress(done, len(batch))
                        continue
                    changes = {"published": head.revision, "workflow": {"state": "published"}}
                    written.append(self._commit_pointers(type_name, id_, head.revision, changes, "publish", actor,
                                                         message))
                else:
                    written.append(self._commit_revision(document, None, actor, message, publish, None))
                if progress:
                    progress(done, len(batch))
            return written

    def delete(self, type_name, id_, *, expected_revision, actor, message=""):
        """Add a tombstone revision and withdraw the document; its history stays readable.
        Refused while other live documents refer to it."""
        with self._lock:
            self._recover()
            state = self.state(type_name, id_)
            if not state or state.deleted:
                raise NotFound(f"{type_name}/{id_} does not exist.")
            referrers = sorted(f"{other.type}/{other.id}" for other in self._live_heads()
                               if any((t, i) == (type_name, id_) for _, t, i in references(other.content)))
            if referrers:
                raise InvalidDocument(f"{type_name}/{id_}", [("id", f"is still referred to by {', '.join(referrers)}.")])
            return self._commit(type_name, id_, expected_revision, None, {"published": None, "deleted": True},
                                "delete", actor, message)

    def set_pointers(self, type_name, id_, *, expected_revision, changes, kind, actor, message="", check=None,
                     details=None):
        """Move pointers without a new revision: publish, unpublish, workflow transitions.
        check(pointers): called under the lock with the current pointers; raise to refuse."""
        with self._lock:
            self._recover()
            if not self.state(type_name, id_):
                raise NotFound(f"{type_name}/{id_} does not exist.")
            return self._commit_pointers(type_name, id_, expected_revision, changes, kind, actor, message, check,
                                         details)

    def _live_heads(self):
        for type_name, id_ in self.keys():
            head = self.head(type_name, id_)
            if head and not head.deleted:
                yield head

    def _commit_revision(self, document, expected_revision, actor, message, publish, workflow, check=None,
                         details=None):
        if publish and workflow is None:
            workflow = {"state": "published"}  # an import publishes outright
        changes = {"deleted": False, **({"workflow": workflow} if workflow is not None else {})}
        if publish:
            changes["published"] = "new"
        return self._commit(document["type"], document["id"], expected_revision, document, changes,
                            "publish" if publish else "revision", actor, message, check, details)

    def _commit_pointers(self, type_name, id_, expected_revision, changes, kind, actor, message, check=None,
                         details=None):
        published = changes.get("published")
        if published is not None:
            target = self.revision(type_name, id_, published)
            if target is None or target.deleted:
                raise Unpublishable(f"{type_name}/{id_} has no revision {published} to publish.")
        return self._commit(type_name, id_, expected_revision, None, changes, kind, actor, message, check, details)

    def _commit(self, type_name, id_, expected_revision, document, pointer_changes, kind, actor, message,
                check=None, details=None):
        """One change: maybe a new revision (a document, or a tombstone for kind 'delete'), and
        pointer changes. Caller holds the lock and has recovered."""
        key = f"{type_name}/{id_}"
        db = _open(self.document_path(type_name, id_), self.durable)
        revisions, pointers_table = db.table("revisions"), db.table("pointers")
        pointers = dict(pointers_table.get(doc_id=1) or {})
        head = pointers.get("head", 0)
        if expected_revision is not None and expected_revision != head:
            raise Conflict(key, expected_revision, head)
        if check is not None:
            check(pointers)
        seq = self.last_seq() + 1
        at = now_iso()
        adds_revision = document is not None or kind == "delete"
        number = head + 1 if adds_revision else head
        change = Change(seq, type_name, id_, number, kind, actor, at, message, details)
        content = dict(document, revision=number) if document is not None else None
        # Hashing serializes the content as the file write will: anything orjson cannot write
        # fails here, before the commit is recorded as pending.
        digest = content_hash(content) if content else None
        self._write_head({"seq": seq - 1, "pending": change.__dict__})
        if adds_revision:
            revisions.insert(Document({"revision": number, "content": content, "hash": digest,
                                       "actor": actor, "at": at, "message": message, "seq": seq}, doc_id=number))
            pointers["head"] = number
        for name, value in pointer_changes.items():
            pointers[name] = number if value == "new" else value
        pointers["last_seq"] = seq
        if kind in PUBLICATION_KINDS:
            pointers["publication_seq"] = seq
        pointers_table.upsert(Document(pointers, doc_id=1))
        db.close()
        self._append_change(change)
        self._write_head({"seq": seq, "pending": None})
        self.commits += 1
        return change

    def _write_head(self, head):
        AtomicJSONStorage(self.head_path, durable=self.durable).write(head)

    def _append_change(self, change):
        db = _open(self.segment_path(change.seq), self.durable)
        table = db.table("_default")
        if not table.contains(doc_id=change.seq):
            table.insert(Document(change.__dict__, doc_id=change.seq))
        db.close()

    # --- recovery and checks -------------------------------------------------

    def _recover(self):
        """Finish or forget a commit that a crash interrupted. Caller holds the lock."""
        head = read_json_file(self.head_path)
        if not head or not head.get("pending"):
            return
        pending = Change(**head["pending"])
        pointers, _ = self._read_document_file(pending.type, pending.id)
        if pointers and pointers.get("last_seq") == pending.seq:
            self._append_change(pending)
            self._write_head({"seq": pending.seq, "pending": None})
        else:
            self._write_head({"seq": head.get("seq", 0), "pending": None})

    def _remove_orphaned_temporaries(self):
        # A writer killed inside atomic_write leaves its temporary file; holding the lock,
        # no write is in progress, so none of them is still wanted.
        # Only the store's own files: keys.json beside them has its own lock and writers.
        for pattern in (".head.json.*.tmp", "changes/.*.tmp", "documents/*/.*.tmp"):
            for path in self.root.glob(pattern):
                path.unlink(missing_ok=True)

    def _check_files_parse(self):
        for path in sorted((self.root / "changes").glob("*.json")) + sorted((self.root / "documents").glob("*/*.json")):
            data = read_json_file(path)
            if path.parent.parent.name == "documents" and not (data.get("pointers") or {}).get("1"):
                raise StoreCorrupt(path, "no pointers record")

    def verify(self):
        """Every revision's hash and every pointer, and the change sequence: a list of problems."""
        problems = []
        for type_name, id_ in self.keys():
            path = self.document_path(type_name, id_)
            try:
                pointers, revisions = self._read_document_file(type_name, id_)
            except StoreCorrupt as error:
                problems.append(str(error))
                continue
            numbers = sorted(int(n) for n in revisions)
            if numbers != list(range(1, len(numbers) + 1)):
                problems.append(f"{path}: revisions are not numbered 1..{len(numbers)}: {numbers}")
            for number in numbers:
                row = revisions[str(number)]
                if row.get("content") is not None and content_hash(row["content"]) != row.get("hash"):
                    problems.append(f"{path}: revision {number}: content does not match its hash")
                if row.get("content") is not None and row["content"].get("revision") != number:
                    problems.append(f"{path}: revision {number}: document says revision {row['content'].get('revision')}")
            if not pointers:
                problems.append(f"{path}: no pointers record")
                continue
            if pointers.get("head") != (numbers[-1] if numbers else None):
                problems.append(f"{path}: head points at {pointers.get('head')}, latest revision is {numbers[-1] if numbers else None}")
            published = pointers.get("published")
            if published is not None and (str(published) not in revisions or revisions[str(published)].get("content") is None):
                problems.append(f"{path}: published points at revision {published}, which has no content")
        last = self.last_seq()
        try:
            changes = self.changes(0)
        except StoreCorrupt as error:
            problems.append(str(error))
        else:
            if [c.seq for c in changes] != list(range(1, last + 1)):
                problems.append(f"{self.root / 'changes'}: change sequence has gaps")
        return problems
