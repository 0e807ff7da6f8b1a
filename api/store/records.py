"""What the store keeps and answers with, and the errors it raises. No I/O in here."""
import errno
import hashlib
from dataclasses import dataclass, field
from typing import Callable

import orjson


PUBLICATION_KINDS = ("publish", "unpublish", "delete")
NEW_REVISION = "new"  # in Commit.pointers: "the revision this commit adds"


class StoreError(Exception):
    pass


class NotFound(StoreError):
    pass


class Conflict(StoreError):
    """The document moved since the caller read it (or exists when it should not)."""

    def __init__(self, key, expected, current):
        super().__init__(f"{key} is at revision {current}, not {expected}.")
        self.key, self.expected, self.current = key, expected, current


class Unpublishable(StoreError):
    pass


class StorageError(StoreError):
    """The disk refused a write or a read. A commit that raises this was rolled back."""

    def __init__(self, error):
        where = f"{error.filename}: " if getattr(error, "filename", None) else ""
        super().__init__(f"{where}{error.strerror or error}; nothing was saved.")
        self.error = error


class StorageFull(StorageError):
    """No space left (ENOSPC) or quota exceeded (EDQUOT)."""


class StorageUnavailable(StorageError):
    """Any other I/O failure."""


def storage_error(error):
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    return (StorageFull if full else StorageUnavailable)(error)


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

    @classmethod
    def from_pointers(cls, type_name, id_, pointers):
        return cls(type_name, id_, pointers["head"], pointers.get("published"), pointers.get("deleted", False),
                   pointers.get("workflow") or {}, pointers.get("last_seq", 0), pointers.get("publication_seq", 0))


@dataclass(frozen=True)
class Commit:
    """One change to one document, already validated by the caller: maybe a new revision (a
    document, or a tombstone), and pointer changes. The store only persists it."""

    type: str
    id: str
    kind: str  # revision | publish | unpublish | delete | transition
    actor: str
    message: str = ""
    details: dict | None = None
    expected_revision: int | None = None  # the head the caller saw; 0 for a new document; None: no check
    content: dict | None = None           # the new revision's document
    tombstone: bool = False               # the new revision is a deletion
    pointers: dict = field(default_factory=dict)  # pointer name -> value, NEW_REVISION for the new one
    check: Callable[[dict], None] | None = None   # called under the lock with the current pointers

    @property
    def adds_revision(self):
        return self.content is not None or self.tombstone


def content_hash(document):
    """sha256 of the document's canonical JSON, without `revision` (which the store assigns)."""
    body = {key: value for key, value in document.items() if key != "revision"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


