"""The versioned store: immutable revisions, validation, durability, many processes, crashes."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import orjson
import pytest

from api.store.readmodel import ReadModel
from api.store.storage import StoreCorrupt
from api.services.documents import Documents
from api.knowledge.documents import InvalidDocument, references
from api.store.store import Conflict, NotFound, Store, content_hash
from conftest import ROOT, imported_store

WORKER = ROOT / "tests" / "store_worker.py"


def faq(store, id_="drug-q1"):
    return dict(store.head("faq", id_).content)


def snapshot(root):
    """The store's own files: not its lock, nor the index file, which is derived data that any
    reader may touch (SQLite's shared memory)."""
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "store.lock" and not p.name.startswith("indexes.sqlite")}


def test_every_write_is_a_new_immutable_revision(any_store):
    store = any_store
    first = store.head("faq", "drug-q1")
    Documents(store).write(dict(first.content, answer="Second."), expected_revision=1, actor="ann", message="clarify")
    Documents(store).write(dict(first.content, answer="Third."), expected_revision=2, actor="bob", message="again")
    revisions = store.revisions("faq", "drug-q1")
    assert [(r.revision, r.content["answer"], r.actor, r.message) for r in revisions] == [
        (1, "A1.", "import", "import"), (2, "Second.", "ann", "clarify"), (3, "Third.", "bob", "again")]
    assert all(r.hash == content_hash(r.content) for r in revisions)
    assert store.revision("faq", "drug-q1", 1).content["answer"] == "A1."
    assert store.head("faq", "drug-q1").revision == 3
    assert store.published("faq", "drug-q1").revision == 1, "a draft write must not move the published pointer"


def test_entries_of_gives_the_documents_asked_for_in_that_order_without_the_missing(any_store):
    # One has a draft above its published revision: each of the two is given.
    head = any_store.head("faq", "drug-q1")
    Documents(any_store).write(dict(head.content, answer="A draft."), expected_revision=1, actor="ann")
    every = {(state.type, state.id): (state, head, published) for state, head, published in any_store.entries()}
    assert every[("faq", "drug-q1")][1].revision == 2 and every[("faq", "drug-q1")][2].revision == 1
    keys = [("faq", "drug-q2"), ("faq", "no-such-faq"), ("product", "drug"), ("faq", "drug-q1")]
    assert list(any_store.entries_of(keys)) == [every[key] for key in keys if key in every]


def test_write_with_a_stale_revision_is_refused(any_store):
    store = any_store
    content = faq(store)
    Documents(store).write(dict(content, answer="Mine."), expected_revision=1, actor="ann")
    with pytest.raises(Conflict) as raised:
        Documents(store).write(dict(content, answer="Theirs."), expected_revision=1, actor="bob")
    assert raised.value.current == 2
    assert store.head("faq", "drug-q1").content["answer"] == "Mine."


def test_creating_a_document_that_exists_is_a_conflict(any_store):
    store = any_store
    with pytest.raises(Conflict):
        Documents(store).write(faq(store), expected_revision=0, actor="ann")


@pytest.mark.parametrize("change,field", [
    (lambda d: d.pop("answer"), "answer"),
    (lambda d: d.update(product="missing"), "product"),
    (lambda d: d.update(citations=[{"source": "gone"}]), "citations.0.source"),
    (lambda d: d.update(schema_version=7), "schema_version"),
    (lambda d: d.update(type="leaflet"), "type"),
])
def test_invalid_write_raises_and_changes_nothing_stored(backend, any_store, change, field):
    store = any_store
    before = backend.snapshot(store)
    content = faq(store)
    change(content)
    with pytest.raises(InvalidDocument) as raised:
        Documents(store).write(content, expected_revision=1, actor="ann")
    assert field in [f for f, _ in raised.value.errors]
    assert backend.snapshot(store) == before


def test_older_format_is_migrated_on_write(any_store):
    store = any_store
    content = faq(store)
    content.update(schema_version=1, citations=["src"])
    Documents(store).write(content, expected_revision=1, actor="ann")
    head = store.head("faq", "drug-q1").content
    assert head["schema_version"] == 3 and head["citations"] == [{"source": "src"}]


def test_delete_adds_a_tombstone_and_keeps_history(any_store):
    store = any_store
    Documents(store).delete("article", "about-drug", expected_revision=1, actor="ann", message="obsolete")
    head = store.head("article", "about-drug")
    assert head.deleted and head.revision == 2
    assert store.published("article", "about-drug") is None
    assert store.revision("article", "about-drug", 1).content["headline"] == "About Drug"
    with pytest.raises(NotFound):
        Documents(store).delete("article", "about-drug", expected_revision=2, actor="ann")
    # Once nothing refers to them, what the article showed can go too.
    Documents(store).delete("faq", "drug-q2", expected_revision=1, actor="ann")


def test_delete_is_refused_while_referenced(any_store):
    store = any_store
    with pytest.raises(InvalidDocument, match="still referred to by article/about-drug"):
        Documents(store).delete("mechanism", "drug-mechanism", expected_revision=1, actor="ann")
    assert not store.head("mechanism", "drug-mechanism").deleted


def test_change_sequence_is_gapless_and_survives_restart(backend, any_store):
    store = any_store
    content = faq(store)
    for i in range(3):
        Documents(store).write(dict(content, answer=f"v{i}"), expected_revision=None, actor="ann")
    reopened = backend.open()
    changes = reopened.changes(0)
    assert [c.seq for c in changes] == list(range(1, 13))
    assert [c.kind for c in changes[-3:]] == ["revision"] * 3
    assert reopened.changes(10) == changes[10:]
    assert reopened.changes(0, limit=2) == changes[:2]
    Documents(reopened).write(dict(content, answer="after restart"), expected_revision=None, actor="ann")
    assert reopened.last_seq() == 13


def test_changes_span_segments(tmp_path, documents, monkeypatch):
    import api.store.layout

    monkeypatch.setattr(api.store.layout, "SEGMENT_SIZE", 4)
    store = Store(tmp_path / "db")
    Documents(store).import_(documents, actor="import")
    assert len(list((tmp_path / "db" / "changes").glob("*.jsonl"))) == 3
    assert [c.seq for c in store.changes(3, limit=5)] == [4, 5, 6, 7, 8]
    assert store.verify() == []


def test_import_of_a_set_with_a_bad_document_writes_nothing(backend, documents):
    documents[-1]["author"] = "nobody"
    store = backend.open()
    with pytest.raises(InvalidDocument, match="person/nobody"):
        Documents(store).import_(documents, actor="import")
    assert store.last_seq() == 0 and list(store.keys()) == []


# --- corruption -------------------------------------------------------------

@pytest.mark.parametrize("victim,damage", [
    ("documents/faq/drug-q1/pointers.json", lambda b: b[: len(b) // 2]),
    ("documents/faq/drug-q1/pointers.json", lambda b: b"\x00" * len(b)),
    ("documents/faq/drug-q1/pointers.json", lambda b: b"[]"),
    ("documents/faq/drug-q1/pointers.json", lambda b: b"{}"),
    ("changes/00000000.jsonl", lambda b: b[:-3]),
    ("head.json", lambda b: b"{\"seq\": "),
    ("head.json", lambda b: b"{}"),
    ("head.json", lambda b: b'{"layout": 1}'),
    ("head.json", lambda b: b'{"layout": 2, "seq": "2", "pending": null}'),
    ("head.json", lambda b: b'{"layout": 2, "seq": 2, "pending": 7}'),
    ("head.json", lambda b: b'{"layout": 2, "seq": 2, "pending": {"seq": 3}}'),
], ids=["truncated", "zeroed", "not-an-object", "no-pointers", "truncated-changes", "truncated-head", "empty-head",
        "head-says-layout-1", "head-seq-text", "head-pending-number", "head-pending-damaged"])
def test_corrupt_file_stops_the_store_and_is_left_untouched(store, victim, damage):
    # Opening checks head.json and the current log segment only (it reads no document, so it
    # costs the same at 100,000 documents); a damaged pointers file stops its first reader.
    path = store.root / victim
    path.write_bytes(damage(path.read_bytes()))
    before = snapshot(store.root)
    with pytest.raises(StoreCorrupt) as raised:
        Store(store.root).state("faq", "drug-q1")
    assert str(path) in str(raised.value)
    assert snapshot(store.root) == before


def test_a_layout_2_store_without_head_json_is_refused_not_upgraded(store):
    """An upgrade from layout 1 rewrites the change logs from layout-1 files; run on a layout-2
    store that lost head.json, it would have removed every change."""
    (store.root / "head.json").unlink()
    before = snapshot(store.root)
    with pytest.raises(StoreCorrupt, match="head.json"):
        Store(store.root).state("faq", "drug-q1")
    assert snapshot(store.root) == before


def test_pointers_ahead_of_head_json_are_reported_not_waited_for(store):
    """A document's pointers and previous pointers both past head.json's last change: not a
    commit in flight (that keeps the previous ones committed) but damage, reported at once."""
    before_writes = store.last_seq()
    for revision, answer in ((1, "Second."), (2, "Third.")):
        Documents(store).write(dict(faq(store), answer=answer), expected_revision=revision, actor="x")
    head = store.root / "head.json"
    head.write_bytes(orjson.dumps({**orjson.loads(head.read_bytes()), "seq": before_writes}))
    before = snapshot(store.root)
    with pytest.raises(StoreCorrupt, match="past the store's last"):
        Store(store.root).state("faq", "drug-q1")
    assert snapshot(store.root) == before


def test_check_reports_tampered_content_and_pointers(store):
    folder = store.root / "documents" / "faq" / "drug-q1"
    revision = json.loads((folder / "1.json").read_bytes())
    revision["content"]["answer"] = "Tampered."
    (folder / "1.json").write_text(json.dumps(revision))
    pointers = json.loads((folder / "pointers.json").read_bytes())
    pointers["published"] = 5
    (folder / "pointers.json").write_text(json.dumps(pointers))
    problems = Store(store.root).verify()
    assert any("revision 1: content does not match its hash" in p for p in problems)
    assert any("published points at revision 5" in p for p in problems)


# --- read model ------------------------------------------------------------

def test_read_model_serves_published_and_follows_other_processes(backend, any_store):
    store = any_store
    model = ReadModel(store, references)
    assert model.get("faq", "drug-q1").document["answer"] == "A1."
    assert json.loads(model.get("faq", "drug-q1").body) == model.get("faq", "drug-q1").document
    assert [p.document["id"] for p in model.all("faq")] == ["drug-q1", "drug-q2"]
    content = dict(faq(store), answer="Draft only.")
    # Another process commits a draft, then a publish, then a deletion.
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); {backend.opener()}; from api.services.documents import Documents; s = Documents(store);"
              f"import json; c = json.loads({json.dumps(json.dumps(content))});"
              "s.write(c, expected_revision=1, actor='x');")
    subprocess.run([sys.executable, "-c", script], check=True)
    model.refresh(force=True)
    assert model.get("faq", "drug-q1").document["answer"] == "A1.", "a draft must not reach the read model"
    version = model.version
    publish = script.replace("s.write(c, expected_revision=1, actor='x');",
                             "s.set_pointers('faq', 'drug-q1', expected_revision=2, changes={'published': 2}, kind='publish', actor='x');"
                             "s.delete('article', 'about-drug', expected_revision=1, actor='x')")
    subprocess.run([sys.executable, "-c", publish], check=True)
    model.refresh(force=True)
    assert model.get("faq", "drug-q1").document["answer"] == "Draft only."
    assert model.get("article", "about-drug") is None
    assert len(model.all("article")) == 0
    assert model.version > version


def test_read_model_sees_another_process_within_the_check_interval(backend, any_store):
    from api.store.readmodel import CHECK_INTERVAL

    model = ReadModel(any_store, references)
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); {backend.opener()}; from api.services.documents import Documents; s = Documents(store);"
              "s.delete('article', 'about-drug', expected_revision=1, actor='x')")
    subprocess.run([sys.executable, "-c", script], check=True)
    model.refresh()  # within the interval of the last check: may still answer from memory
    time.sleep(CHECK_INTERVAL * 1.5)
    model.refresh()
    assert model.get("article", "about-drug") is None


# --- many processes, real files --------------------------------------------

def read_acknowledged(log_paths):
    acknowledged = []
    for path in log_paths:
        if path.exists():
            for line in path.read_text().splitlines():
                faq_id, revision, seq, answer = line.split(" ", 3)
                acknowledged.append((faq_id, int(revision), int(seq), answer))
    return acknowledged


def assert_consistent(store, acknowledged):
    assert store.verify() == []
    for faq_id, revision, seq, answer in acknowledged:
        stored = store.revision("faq", faq_id, revision)
        assert stored is not None and stored.content["answer"] == answer and stored.seq == seq
    for faq_id in ("drug-q1", "drug-q2"):
        numbers = [r.revision for r in store.revisions("faq", faq_id)]
        assert numbers == list(range(1, len(numbers) + 1))
    assert [c.seq for c in store.changes(0)] == list(range(1, store.last_seq() + 1))
    return store


@pytest.mark.slow
def test_four_processes_writing_overlapping_documents_lose_nothing(backend, any_store, tmp_path):
    logs = [tmp_path / f"ack-{n}.log" for n in range(4)]
    workers = [subprocess.Popen([sys.executable, str(WORKER), str(backend.root), f"w{n}", "100", str(log), "drug-q1", "drug-q2"],
                                env={**os.environ, **backend.env()})
               for n, log in enumerate(logs)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0, 0, 0]
    acknowledged = read_acknowledged(logs)
    assert len(acknowledged) == 400
    assert len({(faq_id, revision) for faq_id, revision, _, _ in acknowledged}) == 400, "two writes got one revision"
    reopened = assert_consistent(backend.open(), acknowledged)
    assert reopened.head("faq", "drug-q1").revision + reopened.head("faq", "drug-q2").revision == 402
    assert reopened.last_seq() == 9 + 400


@pytest.mark.slow
def test_writer_killed_at_random_moments_loses_no_acknowledged_write(backend, any_store, tmp_path):
    rng = random.Random(20261123)
    log = tmp_path / "ack.log"
    for attempt in range(25):
        acknowledged = len(read_acknowledged([log]))
        worker = subprocess.Popen([sys.executable, str(WORKER), str(backend.root), f"k{attempt}", "100000", str(log),
                                   "drug-q1", "drug-q2"], env={**os.environ, **backend.env()})
        # Start-up time varies a lot on a loaded machine: wait for the first acknowledged write,
        # then kill somewhere across the next commits (a commit takes a few tens of ms).
        while len(read_acknowledged([log])) == acknowledged and worker.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.1))
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
        reopened = backend.open()  # opening the file store rolls back a killed writer's commit
        assert_consistent(reopened, read_acknowledged([log]))
        reopened.close()
        assert list(backend.root.rglob(".*.tmp")) == [], "opening the store clears a killed writer's temporaries"
        assert len(read_acknowledged([log])) > acknowledged, "the writer acknowledged writes before the kill"


IMPORT_WORKER = """
import os, sys
from api.services.documents import Documents
faq = dict(store.head("faq", "drug-q2").content)
log_path, name = sys.argv[1:]
with open(log_path, "a") as log:
    for batch in range(1000):
        edit = store.head("faq", "drug-q1")
        changes = store.commit_batch(
            [Documents._revision_commit(dict(edit.content, answer=f"{name} batch {batch}"), edit.revision, "import", "", True)]
            + [Documents._revision_commit(dict(faq, id=f"{name}x{batch}-{n}"), 0, "import", "", True) for n in range(200)])
        log.write(f"{batch} {changes[0].revision} {changes[0].seq}\\n")
        log.flush()
        os.fsync(log.fileno())
"""


@pytest.mark.slow
def test_an_import_killed_between_batches_or_inside_one_keeps_whole_batches_only(backend, any_store, tmp_path):
    rng = random.Random(20261124)
    script = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {backend.opener()}\n{IMPORT_WORKER}"
    logs = []
    for attempt in range(6):
        name, log = f"k{attempt}", tmp_path / f"batches-{attempt}.log"
        logs.append((name, log))
        worker = subprocess.Popen([sys.executable, "-c", script, str(log), name], env={**os.environ, **backend.env()})
        while not (log.exists() and log.read_text()) and worker.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.3))  # a batch of 201 changes takes tens to hundreds of ms
        os.kill(worker.pid, signal.SIGKILL)
        assert worker.wait(timeout=30) == -signal.SIGKILL
        reopened = backend.open()
        assert reopened.verify() == []
        assert log.read_text(), "the worker acknowledged a batch before the kill"
        for name, log in logs:
            for batch, revision, seq in (line.split() for line in log.read_text().splitlines()):
                edit = reopened.revision("faq", "drug-q1", int(revision))
                assert edit.content["answer"] == f"{name} batch {batch}" and edit.seq == int(seq)
                assert reopened.head("faq", f"{name}x{batch}-199").seq == int(seq) + 200
        batches = {state.id.split("-")[0] for state in reopened.states("faq") if state.id.startswith("k")}
        for batch in batches:  # acknowledged or not, a batch is there entirely or not at all
            assert all(reopened.state("faq", f"{batch}-{n}") for n in range(200)), f"{batch} is torn"
        assert [c.seq for c in reopened.changes(0)] == list(range(1, reopened.last_seq() + 1))
        reopened.close()
        assert list(backend.root.rglob(".*.tmp")) == [], "opening the file store clears a killed batch's temporaries"


@pytest.mark.parametrize("id_", ["drug-q1\x00", "a" * 300, "../faq/drug-q1", "Drug-Q1", ""])
def test_a_name_no_document_can_have_finds_nothing_and_raises_nothing(any_store, id_):
    store = any_store
    # Found by a console form that sent a NUL in a reference: it reached the file system.
    assert store.state("faq", id_) is None and store.head("faq", id_) is None
    assert store.revisions("faq", id_) == [] and store.published("faq", id_) is None


def test_a_store_path_that_is_a_file_is_refused_and_left_alone(tmp_path):
    from api.store.store import StoreError

    path = tmp_path / "notes.txt"
    path.write_text("not a store")
    with pytest.raises(StoreError, match="is a file, not a store folder"):
        Store(path)
    assert path.read_text() == "not a store"


def test_a_store_folder_that_cannot_hold_files_is_one_line_not_a_wait():
    """/proc/self exists and refuses new files with ENOENT, which the lock library takes for
    another process holding the lock, and waited for ever."""
    result = subprocess.run([sys.executable, "-m", "api.cli", "check"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "MEDKB_DB": "/proc/self"}, timeout=60)
    assert (result.returncode, result.stderr) == (1, "/proc/self/store.lock: No such file or directory; "
                                                     "nothing was saved.\n")


@pytest.mark.slow
def test_check_while_writers_commit_finds_nothing_wrong(backend, documents, tmp_path):
    """`medkb check` on a store that two writer processes keep committing to: it reads one moment
    (writes wait for it), so it never reports a sound store as corrupt."""
    imported_store(backend, documents)
    env = {**os.environ, **backend.env(), "PYTHONPATH": str(ROOT)}
    writers = [subprocess.Popen([sys.executable, str(WORKER), str(backend.root), name, "300", str(tmp_path / name),
                                 "drug-q1", "drug-q2"], env=env) for name in ("ann", "bob")]
    try:
        checks = [subprocess.run([sys.executable, "-m", "api.cli", "check"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, timeout=120) for _ in range(6)]
    finally:
        assert [writer.wait(timeout=300) for writer in writers] == [0, 0]
    assert [check.stdout for check in checks if check.returncode != 0] == []
