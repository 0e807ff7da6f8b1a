"""`medkb check`: every revision's hash and number, every pointer, and the change sequence.

Reads the whole store (it is an explicit, offline check): never on a request path.
"""
from api.store.records import PUBLICATION_KINDS, content_hash
from api.store.storage import StoreCorrupt, read_json_file


def verify(store):
    """A list of problems, each naming the file; empty when the store is sound."""
    layout = store.layout
    last = store.last_seq()
    problems, last_change = [], {}
    try:
        changes = store.changes(0)
    except StoreCorrupt as error:
        problems.append(str(error))
        changes = []
    else:
        if [c.seq for c in changes] != list(range(1, last + 1)):
            problems.append(f"{layout.changes}: change sequence has gaps")
    for change in changes:
        last_change[(change.type, change.id)] = change
    problems += _publication_log_problems(store, changes)
    for type_name, id_ in store.keys():
        problems += _document_problems(store, type_name, id_, last, last_change)
    return problems


def _document_problems(store, type_name, id_, last, last_change):
    layout = store.layout
    folder = layout.document_dir(type_name, id_)
    try:
        pointers = layout.read_pointers(type_name, id_)
    except StoreCorrupt as error:
        return [str(error)]
    if pointers is None:
        return [f"{folder}: no pointers record"]
    path = layout.pointers_path(type_name, id_)
    problems = []
    numbers = sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())
    head = pointers["head"]
    if numbers != list(range(1, len(numbers) + 1)):
        problems.append(f"{folder}: revisions are not numbered 1..{len(numbers)}: {numbers}")
    if head != (numbers[-1] if numbers else None):
        problems.append(f"{path}: head points at {head}, latest revision is {numbers[-1] if numbers else None}")
    contents = {}
    for number in numbers:
        revision_path = layout.revision_path(type_name, id_, number)
        try:
            row = read_json_file(revision_path)
        except StoreCorrupt as error:
            problems.append(str(error))
            continue
        content = row.get("content")
        contents[number] = content
        if row.get("revision") != number:
            problems.append(f"{revision_path}: revision {number}: the file says revision {row.get('revision')}")
        if content is not None and content_hash(content) != row.get("hash"):
            problems.append(f"{revision_path}: revision {number}: content does not match its hash")
        if content is not None and content.get("revision") != number:
            problems.append(f"{revision_path}: revision {number}: document says revision {content.get('revision')}")
    published = pointers.get("published")
    if published is not None and contents.get(published) is None:
        problems.append(f"{path}: published points at revision {published}, which has no content")
    latest = last_change.get((type_name, id_))
    if pointers.get("last_seq", 0) > last:
        problems.append(f"{path}: last change {pointers.get('last_seq')} is past the store's {last}")
    elif latest is not None and latest.seq != pointers.get("last_seq"):
        problems.append(f"{path}: last change is {pointers.get('last_seq')}, the change log says {latest.seq}")
    return problems


def _publication_log_problems(store, changes):
    expected = [c for c in changes if c.kind in PUBLICATION_KINDS]
    found = []
    try:
        found = store.publications(0)
    except StoreCorrupt as error:
        return [str(error)]
    if found != expected:
        segment = store.layout.publications
        missing = sorted({c.seq for c in expected} ^ {c.seq for c in found})
        return [f"{segment}: the publication log does not match the change log (changes {missing[:10]})"
                if missing else f"{segment}: the publication log does not match the change log"]
    return []

