"""Upgrade a layout-1 store (one TinyDB file per document holding every revision, TinyDB change
segments) to layout 2, on open, under the writer lock, without losing a revision.

Layout-2 files are written beside the old ones, then synced; head.json saying layout 2 is the
upgrade's commit point; only then are the old files removed. A crash before that point leaves
the old store intact and the upgrade runs again; after it, the removal is finished on next open.
"""
import os

import orjson

from api.store import files
from api.store.journal import write_head
from api.store.layout import LAYOUT, Layout
from api.store.records import PUBLICATION_KINDS
from api.store.storage import StoreCorrupt, read_json_file


def needed(layout):
    head = layout.read_head()
    return head.get("layout") != LAYOUT or head.get("removing_layout_1")


def _old_documents(layout):
    return sorted(layout.documents.glob("*/*.json"))


def _old_segments(layout):
    return sorted(layout.changes.glob("*.json"))


def _old_pointers(path):
    data = read_json_file(path)
    pointers = (data.get("pointers") or {}).get("1")
    if not pointers:
        raise StoreCorrupt(path, "no pointers record")
    return pointers, data.get("revisions") or {}


def _finish_old_commit(layout, head):
    """Layout 1's own recovery: a pending commit whose document file was written is finished
    (its change kept), any other is forgotten. Returns (last change number, the finished change)."""
    pending = head.get("pending")
    if not pending or "change" in pending:
        return head.get("seq", 0), None
    old_file = layout.documents / pending["type"] / f"{pending['id']}.json"
    pointers = _old_pointers(old_file)[0] if old_file.exists() else {}
    if pointers.get("last_seq") == pending["seq"]:
        return pending["seq"], pending
    return head.get("seq", 0), None


def upgrade(layout: Layout):
    head = layout.read_head()
    if head.get("layout") != LAYOUT:
        if not layout.head_path.exists() and not layout.documents.exists():
            write_head(layout, 0)  # a new store starts in the current layout
            return
        if not (_old_documents(layout) or _old_segments(layout)) and layout.holds_layout_2():
            # Upgrading would rewrite the change logs from layout-1 files that are not there.
            raise StoreCorrupt(layout.head_path, "missing or not saying layout 2, in a layout-2 store")
        seq, finished = _finish_old_commit(layout, head)
        _write_layout_2(layout, seq, finished)
        os.sync()  # every new file durable before head.json says they are the store
        files.atomic_write(layout.head_path, orjson.dumps({"layout": LAYOUT, "seq": seq, "pending": None,
                                                          "removing_layout_1": True}))
    for path in _old_documents(layout) + _old_segments(layout):
        path.unlink()
    write_head(layout, layout.read_head().get("seq", 0))


def _write_layout_2(layout, seq, finished):
    """Every revision and pointer record, then the change logs rebuilt from the old segments."""
    for old_file in _old_documents(layout):
        type_name, id_ = old_file.parent.name, old_file.stem
        pointers, revisions = _old_pointers(old_file)
        for number, row in revisions.items():
            files.atomic_write(layout.revision_path(type_name, id_, int(number)), orjson.dumps(row), durable=False)
        files.atomic_write(layout.pointers_path(type_name, id_), orjson.dumps(pointers), durable=False)
    changes = {}
    for segment in _old_segments(layout):
        for row in (read_json_file(segment) or {}).get("_default", {}).values():
            changes[row["seq"]] = row
    if finished:
        changes[finished["seq"]] = finished
    for log in (layout.changes, layout.publications):
        for path in log.glob("*.jsonl"):
            path.unlink()  # left by an upgrade that was interrupted: written again in full
    by_log = {}
    for number in range(1, seq + 1):
        row = changes.get(number)
        if row is None:
            raise StoreCorrupt(layout.changes, f"change {number} is missing; cannot upgrade the store")
        line = orjson.dumps(row) + b"\n"
        by_log.setdefault(layout.change_log(number), []).append(line)
        if row["kind"] in PUBLICATION_KINDS:
            by_log.setdefault(layout.publication_log(number), []).append(line)
    for path, lines in by_log.items():
        files.atomic_write(path, b"".join(lines), durable=False)
