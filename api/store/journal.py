"""The commit protocol and its recovery: a commit happens entirely or not at all.

A commit, under the writer lock, after recovery:
 1. head.json records the commit in flight ("pending": the change, whether it adds a revision or
    a document, and the sizes of the two logs before it);
 2. the new revision's file is written (a new name: nothing refers to it yet);
 3. pointers.previous.json becomes a hard link to the current pointers;
 4. pointers.json is replaced;
 5. the change is appended to its change log, and to the publication log if it is one;
 6. head.json moves to the new number with nothing pending. This is THE commit point.

Readers believe pointers only when their last change is committed (<= head.json's number), and
otherwise read pointers.previous.json, so nothing of a commit shows before step 6. When a step
before 6 fails (a full disk, an I/O error) the commit is rolled back at once; when the process
dies, the next one to take the lock rolls it back. Rolling back renames the previous pointers
back, truncates the logs and removes the new revision file: none of that needs free space.
"""
import os
from concurrent.futures import ThreadPoolExecutor

import orjson

from api.store import files
from api.store.layout import LAYOUT, POINTERS, PREVIOUS_POINTERS
from api.store.clock import now_iso
from api.store.records import NEW_REVISION, PUBLICATION_KINDS, Change, content_hash, storage_error
from api.store.storage import read_json_file

# A batch of this many documents or more is written by WRITE_THREADS threads.
PARALLEL_WRITES, WRITE_THREADS = 64, 2


def write_head(layout, seq, pending=None, durable=True):
    files.atomic_write(layout.head_path, orjson.dumps({"layout": LAYOUT, "seq": seq, "pending": pending}),
                       durable=durable)


def _size(path):
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def next_pointers(commit, pointers, seq, number):
    result = dict(pointers)
    if commit.adds_revision:
        result["head"] = number
    for name, value in commit.pointers.items():
        result[name] = number if value == NEW_REVISION else value
    result["last_seq"] = seq
    if commit.kind in PUBLICATION_KINDS:
        result["publication_seq"] = seq
    return result


def change_row(change):
    """The change as the JSON object the logs hold. Not dataclasses.asdict, which deep-copies
    `details` for every change: the row is only serialized, so a shallow copy is enough."""
    return dict(vars(change))


def revision_row(content, number, change):
    stored = dict(content, revision=number) if content is not None else None
    return {"revision": number, "content": stored, "hash": content_hash(stored) if stored else None,
            "actor": change.actor, "at": change.at, "message": change.message, "seq": change.seq}


def commit(layout, commit_, pointers, last_seq, durable=True):
    """Persist `commit_` on top of the document's committed `pointers` ({} for a new document)
    as change last_seq + 1. Returns the Change, or raises StorageFull/StorageUnavailable with
    everything rolled back."""
    seq = last_seq + 1
    head = pointers.get("head", 0)
    number = head + 1 if commit_.adds_revision else head
    change = Change(seq, commit_.type, commit_.id, number, commit_.kind, commit_.actor, now_iso(), commit_.message,
                    commit_.details)
    is_publication = commit_.kind in PUBLICATION_KINDS
    change_log, publication_log = layout.change_log(seq), layout.publication_log(seq)
    pending = {"change": change_row(change), "new_document": not pointers, "adds_revision": commit_.adds_revision,
               "changes": _size(change_log), "publications": _size(publication_log) if is_publication else None}
    line = orjson.dumps(change_row(change)) + b"\n"
    # Serialized before the commit is recorded as pending: content orjson cannot write fails
    # here, leaving nothing to roll back.
    revision = orjson.dumps(revision_row(commit_.content, number, change)) if commit_.adds_revision else None
    pointers_path = layout.pointers_path(change.type, change.id)
    try:
        write_head(layout, last_seq, pending, durable)
        if commit_.adds_revision:
            files.atomic_write(layout.revision_path(change.type, change.id, number), revision, durable)
        if pointers:
            files.link_replace(pointers_path, layout.previous_pointers_path(change.type, change.id))
        files.atomic_write(pointers_path, orjson.dumps(next_pointers(commit_, pointers, seq, number)), durable)
        files.append(change_log, line, durable)
        if is_publication:
            files.append(publication_log, line, durable)
        write_head(layout, seq, None, durable)
    except OSError as error:
        try:
            if layout.read_head().get("seq") == seq:
                return change  # the commit point was passed; only a later fsync complained
            roll_back(layout, pending, durable)
        except OSError:
            pass  # left pending: readers ignore it, and the next writer rolls it back
        raise storage_error(error) from None
    return change


def commit_batch(layout, items, last_seq, durable=True):
    """Persist several commits, each on its own document's committed pointers (`items` is
    [(commit, pointers)], one per document), as changes last_seq + 1 ... with ONE commit point:
    all of them or none. The files are written without an fsync each; one sync of the file
    system makes them durable before head.json moves, so a batch costs two fsyncs whatever its
    size. Returns the Changes, or raises StorageFull/StorageUnavailable with all rolled back.

    Per document that is one folder created (new documents only), the revision written in
    place under its new name (no reader opens it before head.json names it), the previous
    pointers linked (existing documents only) and the pointers replaced atomically, as readers
    may read them at any time. Paths are plain strings: pathlib's joins were an eighth of the time."""
    changes, entries, writes, lines = [], [], [], {}
    at = now_iso()
    documents = str(layout.documents)
    for offset, (commit_, pointers) in enumerate(items, 1):
        seq = last_seq + offset
        number = pointers.get("head", 0) + 1 if commit_.adds_revision else pointers.get("head", 0)
        change = Change(seq, commit_.type, commit_.id, number, commit_.kind, commit_.actor, at, commit_.message,
                        commit_.details)
        row = change_row(change)
        line = orjson.dumps(row) + b"\n"
        segment = layout.segment(seq)
        lines.setdefault((segment, False), []).append(line)
        if commit_.kind in PUBLICATION_KINDS:
            lines.setdefault((segment, True), []).append(line)
        revision = orjson.dumps(revision_row(commit_.content, number, change)) if commit_.adds_revision else None
        writes.append((f"{documents}/{change.type}/{change.id}", change, revision, pointers,
                       orjson.dumps(next_pointers(commit_, pointers, seq, number))))
        entries.append({"change": row, "new_document": not pointers, "adds_revision": commit_.adds_revision})
        changes.append(change)
    logs = {(layout.publication_log if publications else layout.change_log)(layout.first_in_segment(segment)): chunk
            for (segment, publications), chunk in lines.items()}
    pending = {"batch": entries, "logs": {str(path.relative_to(layout.root)): _size(path) for path in logs}}
    try:
        write_head(layout, last_seq, pending, durable)
        if len(writes) < PARALLEL_WRITES:
            _write_documents(writes)
        else:
            # The documents' files are independent, and the time goes in system calls, which
            # release the GIL: a second thread keeps a second core busy (about a third off an
            # import's commits). Both finish before anything is judged, so a failure in one is
            # rolled back with everything the other wrote.
            with ThreadPoolExecutor(WRITE_THREADS) as pool:
                for _ in pool.map(_write_documents, [writes[start::WRITE_THREADS] for start in range(WRITE_THREADS)]):
                    pass
        for path, chunk in logs.items():
            files.append(path, b"".join(chunk), False)
        if durable:
            files.sync_filesystem(layout.root)
        write_head(layout, changes[-1].seq, None, durable)
    except OSError as error:
        try:
            if layout.read_head().get("seq") == changes[-1].seq:
                return changes
            roll_back(layout, pending, durable)
        except OSError:
            pass
        raise storage_error(error) from None
    return changes


def _write_documents(writes):
    for folder, change, revision, pointers, new_pointers in writes:
        if not pointers:
            files.make_folder(folder)
        if revision is not None:
            files.write_new(f"{folder}/{change.revision}.json", revision)
        if pointers:
            files.link_replace(f"{folder}/{POINTERS}", f"{folder}/{PREVIOUS_POINTERS}")
        files.replace_as_lock_holder(f"{folder}/{POINTERS}", new_pointers)


def roll_back(layout, pending, durable=True):
    """Undo whatever of the pending commit (or batch) reached the disk. Idempotent: a crash
    part-way through leaves the pending record for the next process to finish the job."""
    entries = pending["batch"] if "batch" in pending else [pending]
    for entry in reversed(entries):
        _undo_document(layout, entry, durable)
    if "batch" in pending:
        logs = [(layout.root / name, size) for name, size in pending["logs"].items()]
    else:
        seq = pending["change"]["seq"]
        logs = [(layout.change_log(seq), pending["changes"]), (layout.publication_log(seq), pending["publications"])]
    for path, size in logs:
        if size is not None:
            _truncate(path, size, durable)
    try:
        write_head(layout, entries[0]["change"]["seq"] - 1, None, durable)
    except OSError:
        pass  # still pending: the next writer rolls back again, which changes nothing more


def _undo_document(layout, entry, durable):
    change = Change(**entry["change"])
    folder = layout.document_dir(change.type, change.id)
    pointers_path = layout.pointers_path(change.type, change.id)
    current = read_json_file(pointers_path)
    if current is not None and current.get("last_seq") == change.seq:
        if entry["new_document"]:
            pointers_path.unlink()
        else:
            os.replace(layout.previous_pointers_path(change.type, change.id), pointers_path)
    if entry["adds_revision"]:
        layout.revision_path(change.type, change.id, change.revision).unlink(missing_ok=True)
    for path in folder.glob(".*.tmp"):
        path.unlink(missing_ok=True)
    if entry["new_document"] and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
    if folder.is_dir() and durable:
        files.fsync_directory(folder)


def _truncate(path, size, durable):
    if _size(path) <= size:
        return
    if size == 0:
        path.unlink()
        if durable:
            files.fsync_directory(path.parent)
        return
    with open(path, "r+b") as handle:
        handle.truncate(size)
        if durable:
            os.fsync(handle.fileno())


def recover(layout, durable=True):
    """Roll back a commit that a crash or an I/O failure left pending. Caller holds the lock."""
    pending = layout.read_head().get("pending")
    if pending:
        roll_back(layout, pending, durable)
