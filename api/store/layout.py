"""Where the store keeps things, and reading them back. Layout 2, under the store folder:

    head.json                         the last committed change number, and the commit in flight
    documents/<type>/<id>/<n>.json    revision n, written once and never changed
    documents/<type>/<id>/pointers.json            head, published, workflow, last change
    documents/<type>/<id>/pointers.previous.json   a hard link to the pointers before the last commit
    changes/<segment>.jsonl           the global change sequence, one JSON line per change
    publications/<segment>.jsonl      the publish/unpublish/delete changes only, for the feed
    store.lock                        the cross-process writer lock

A segment holds the changes numbered (segment * SEGMENT_SIZE, (segment + 1) * SEGMENT_SIZE].
Logs only ever grow by appending, so a commit writes a few small files whatever the size of the
knowledge base or the length of a document's history.
"""
from pathlib import Path

import orjson

from api.store.storage import StoreCorrupt, read_json_file

SEGMENT_SIZE = 1000
LAYOUT = 2
POINTERS, PREVIOUS_POINTERS = "pointers.json", "pointers.previous.json"


class Layout:
    def __init__(self, root):
        self.root = Path(root)
        self.head_path = self.root / "head.json"
        self.lock_path = self.root / "store.lock"
        self.documents = self.root / "documents"
        self.changes = self.root / "changes"
        self.publications = self.root / "publications"
        self._documents = str(self.documents)

    def document_file(self, type_name, id_, name):
        """A file in a document's folder, as a string: reads take this path, where pathlib's joins
        were a third of the time of reading every document (a read model build)."""
        return f"{self._documents}/{type_name}/{id_}/{name}"

    def document_dir(self, type_name, id_):
        return self.documents / type_name / id_

    def pointers_path(self, type_name, id_):
        return Path(self.document_file(type_name, id_, POINTERS))

    def previous_pointers_path(self, type_name, id_):
        return Path(self.document_file(type_name, id_, PREVIOUS_POINTERS))

    def revision_path(self, type_name, id_, number):
        return Path(self.document_file(type_name, id_, f"{number}.json"))

    @staticmethod
    def segment(seq):
        return (seq - 1) // SEGMENT_SIZE

    @staticmethod
    def first_in_segment(segment):
        return segment * SEGMENT_SIZE + 1

    def change_log(self, seq):
        return self.changes / f"{self.segment(seq):08d}.jsonl"

    def publication_log(self, seq):
        return self.publications / f"{self.segment(seq):08d}.jsonl"

    def read_head(self):
        head = read_json_file(self.head_path) or {}
        if head.get("layout") == LAYOUT:
            seq, pending = head.get("seq"), head.get("pending")
            if type(seq) is not int or seq < 0:
                raise StoreCorrupt(self.head_path, f"its last change number is {seq!r}, not a whole number from 0")
            if pending is not None and not (isinstance(pending, dict) and (
                    {"batch", "logs"} <= pending.keys() or {"change", "changes", "publications"} <= pending.keys())):
                raise StoreCorrupt(self.head_path, "its record of the commit in flight is damaged")
        return head

    def holds_layout_2(self):
        """Whether anything of layout 2 is here (a change log, a document's folder): such a store
        whose head.json does not say layout 2 is damaged, not old, and must not be upgraded."""
        return any(self.changes.glob("*.jsonl")) or any(self.publications.glob("*.jsonl")) or any(
            path.is_dir() for path in self.documents.glob("*/*"))

    def read_pointers(self, type_name, id_):
        path = self.document_file(type_name, id_, POINTERS)
        pointers = read_json_file(path)
        if pointers is not None and not isinstance(pointers.get("head"), int):
            raise StoreCorrupt(path, "no head pointer")
        return pointers


def read_log(path):
    """The complete lines of a log file, parsed. A partial last line (a commit that failed
    part-way, not yet rolled back) is left out: it is past the committed end anyway."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    rows = []
    for number, line in enumerate(lines[:-1], 1):
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            raise StoreCorrupt(path, f"line {number}: invalid JSON: {error}") from None
        if not isinstance(row, dict) or not isinstance(row.get("seq"), int):
            raise StoreCorrupt(path, f"line {number}: not a change")
        rows.append(row)
    return rows
