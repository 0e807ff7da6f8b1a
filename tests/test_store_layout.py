"""Layout 2: one immutable file per revision, append-only change and publication logs, the
upgrade from layout 1, and `verify` over all of it."""
import json
import shutil
from dataclasses import asdict

import pytest
import requests

import api.store.layout
from api.knowledge.documents import references
from api.services.delivery import Delivery
from api.services.documents import Documents
from api.store.readmodel import ReadModel
from api.store.records import PUBLICATION_KINDS, DocumentState
from api.store.storage import StoreCorrupt
from api.store.store import Store
from conftest import ROOT

LAYOUT_1 = ROOT / "tests" / "fixtures" / "layout1-store"  # written by the layout-1 store code (commit 2724404)


def edit(store, id_="drug-q1", **fields):
    head = store.head("faq", id_)
    return Documents(store).write(dict(head.content, **fields), expected_revision=head.revision, actor="ann")


def test_a_commit_adds_one_file_and_never_rewrites_an_older_revision(store):
    folder = store.root / "documents" / "faq" / "drug-q1"
    first = folder / "1.json"
    before = (first.stat().st_ino, first.stat().st_mtime_ns, first.read_bytes())
    for n in range(3):
        edit(store, answer=f"Edit {n}.")
    assert (first.stat().st_ino, first.stat().st_mtime_ns, first.read_bytes()) == before
    assert sorted(p.name for p in folder.iterdir()) == ["1.json", "2.json", "3.json", "4.json", "pointers.json",
                                                        "pointers.previous.json"]
    assert [r.content["answer"] for r in store.revisions("faq", "drug-q1")] == ["A1.", "Edit 0.", "Edit 1.", "Edit 2."]


def test_the_publication_log_holds_exactly_the_publication_changes(store):
    edit(store, answer="A draft.")
    Documents(store).set_pointers("faq", "drug-q1", expected_revision=2, changes={"published": 2}, kind="publish",
                                  actor="pub")
    Documents(store).set_pointers("product", "other", expected_revision=1, changes={"workflow": {"state": "x"}},
                                  kind="transition", actor="pub")
    everything = store.changes(0)
    assert store.publications(0) == [c for c in everything if c.kind in PUBLICATION_KINDS]
    assert [c.seq for c in store.publications(9)] == [11]
    assert store.publications(11) == []


@pytest.fixture
def segmented_store(tmp_path, documents, monkeypatch):
    """A store with segments of 4 changes, 4 drafts past the import, and its first change log
    segment unreadable: a read that opens it fails."""
    monkeypatch.setattr(api.store.layout, "SEGMENT_SIZE", 4)
    store = Store(tmp_path / "db")
    Documents(store).import_(documents, actor="import")
    for n in range(4):
        edit(store, answer=f"Draft {n}.")
    (store.root / "changes" / "00000000.jsonl").write_bytes(b"not json\n")  # changes 1-4
    return store


def test_paging_changes_reads_only_the_segments_it_needs(segmented_store):
    store = segmented_store
    assert [c.seq for c in store.changes(8, limit=3)] == [9, 10, 11]
    assert [c.seq for c in store.publications(8)] == [9]
    with pytest.raises(StoreCorrupt, match="00000000.jsonl"):
        store.changes(0, limit=1)


def test_readers_replay_only_publications_never_the_drafts(tmp_path, documents, monkeypatch):
    monkeypatch.setattr(api.store.layout, "SEGMENT_SIZE", 4)
    store = Store(tmp_path / "db")
    Documents(store).import_(documents, actor="import")
    model = ReadModel(store, references, check_interval=0)
    delivery = Delivery(model)
    for n in range(3):
        edit(store, answer=f"Draft {n}.")  # changes 10, 11, 12: segment 2
    Documents(store).set_pointers("faq", "drug-q1", expected_revision=4, changes={"published": 4}, kind="publish",
                                  actor="pub")  # change 13
    (store.root / "changes" / "00000002.jsonl").write_bytes(b"damaged\n")  # the drafts' segment
    delivery.refresh()
    assert model.get("faq", "drug-q1").document["answer"] == "Draft 2."
    page = delivery.feed(9, 10)
    assert [(c["seq"], c["id"]) for c in page["changes"]] == [(13, "drug-q1")]
    assert page["next_cursor"] == "13" and not page["has_more"]


# --- verify ----------------------------------------------------------------------------------

def _set(path, **values):
    data = json.loads(path.read_bytes())
    data.update(values)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("damage,expected", [
    (lambda root: (root / "documents/faq/drug-q1/2.json").unlink(), "revisions are not numbered 1..2: [1, 3]"),
    (lambda root: _set(root / "documents/faq/drug-q1/pointers.json", head=7), "head points at 7, latest revision is 3"),
    (lambda root: _set(root / "documents/faq/drug-q1/3.json", revision=9), "revision 3: the file says revision 9"),
    (lambda root: (root / "publications/00000000.jsonl").write_bytes(b""), "the publication log does not match"),
    (lambda root: _set(root / "documents/faq/drug-q2/pointers.json", last_seq=3), "last change is 3, the change log says 8"),
], ids=["missing-revision", "head", "renumbered", "publication-log", "last-change"])
def test_check_reports_each_kind_of_damage_naming_the_file(store, damage, expected):
    edit(store, answer="Two.")
    edit(store, answer="Three.")
    assert store.verify() == []
    damage(store.root)
    problems = Store(store.root).verify()
    assert any(expected in p for p in problems), problems


# --- upgrade from layout 1 --------------------------------------------------------------------

@pytest.fixture
def layout_1(tmp_path):
    root = tmp_path / "old"
    shutil.copytree(LAYOUT_1, root)
    return root


def read_layout_1(root):
    documents = {}
    for path in sorted((root / "documents").glob("*/*.json")):
        data = json.loads(path.read_bytes())
        documents[(path.parent.name, path.stem)] = (data["pointers"]["1"], data["revisions"])
    changes = json.loads((root / "changes" / "00000000.json").read_bytes())["_default"]
    return documents, [changes[str(seq)] for seq in sorted(map(int, changes))]


def test_a_layout_1_store_is_upgraded_on_open_without_losing_anything(layout_1):
    documents, changes = read_layout_1(layout_1)
    store = Store(layout_1)
    assert store.verify() == []
    for (type_name, id_), (pointers, revisions) in documents.items():
        assert store.state(type_name, id_) == DocumentState.from_pointers(type_name, id_, pointers)
        stored = {str(r.revision): {"revision": r.revision, "content": r.content, "hash": r.hash, "actor": r.actor,
                                    "at": r.at, "message": r.message, "seq": r.seq}
                  for r in store.revisions(type_name, id_)}
        assert stored == revisions
    assert [asdict(c) for c in store.changes(0)] == changes
    assert [c.seq for c in store.publications(0)] == [c["seq"] for c in changes if c["kind"] in PUBLICATION_KINDS]
    assert list((layout_1 / "documents").glob("*/*.json")) == [] and list((layout_1 / "changes").glob("*.json")) == []
    assert store.state("article", "about-drug").deleted and store.published("faq", "drug-q2") is None
    # Layout 1's documents are of an older content format, so the change after the upgrade is
    # one that moves pointers only: what matters is that the upgraded store commits.
    head = store.head("faq", "drug-q1")
    change = Documents(store).set_pointers("faq", "drug-q1", expected_revision=head.revision,
                                           changes={"published": None}, kind="unpublish", actor="ann")
    assert change.seq == 16 and change.revision == head.revision
    assert Store(layout_1).verify() == []


@pytest.mark.parametrize("document_written", [True, False], ids=["finished", "forgotten"])
def test_a_commit_layout_1_left_pending_is_finished_or_forgotten_by_the_upgrade(layout_1, document_written):
    segment = layout_1 / "changes" / "00000000.json"
    data = json.loads(segment.read_bytes())
    delete = data["_default"].pop("15")  # the article's deletion, interrupted before its change was appended
    segment.write_text(json.dumps(data))
    (layout_1 / "head.json").write_text(json.dumps({"seq": 14, "pending": delete}))
    if not document_written:
        article = layout_1 / "documents" / "article" / "about-drug.json"
        old = json.loads(article.read_bytes())
        del old["revisions"]["2"]
        old["pointers"]["1"].update(head=1, published=1, deleted=False, last_seq=9, publication_seq=9)
        article.write_text(json.dumps(old))
    store = Store(layout_1)
    assert store.verify() == []
    assert store.last_seq() == (15 if document_written else 14)
    assert store.state("article", "about-drug").deleted is document_written


@pytest.mark.parametrize("fail_at", [1, 12, -2, -1], ids=["first", "middle", "commit-point", "after"])
def test_an_interrupted_upgrade_runs_again_and_loses_nothing(layout_1, tmp_path, monkeypatch, fail_at):
    import errno

    from api.store import files
    from api.store.records import StorageFull

    documents, changes = read_layout_1(layout_1)
    real, calls, failing = files.atomic_write, [], [None]

    def counting(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == failing[0]:
            raise OSError(errno.ENOSPC, "No space left on device", str(args[0]))
        return real(*args, **kwargs)

    monkeypatch.setattr(files, "atomic_write", counting)
    Store(shutil.copytree(LAYOUT_1, tmp_path / "dry-run"))
    failing[0], calls[:] = fail_at if fail_at > 0 else len(calls) + 1 + fail_at, []
    with pytest.raises(StorageFull):
        Store(layout_1)
    monkeypatch.setattr(files, "atomic_write", real)
    store = Store(layout_1)
    assert store.verify() == []
    assert [asdict(c) for c in store.changes(0)] == changes
    for (type_name, id_), (pointers, revisions) in documents.items():
        assert [r.revision for r in store.revisions(type_name, id_)] == sorted(map(int, revisions))


def test_the_audit_log_pages_by_change_number_reading_only_that_page(segmented_store):
    from api.app import create_app
    from api.store.keys import KeyStore

    store = segmented_store
    key = KeyStore(store.root).create("admin", "ada")[1]
    client = create_app({"MEDKB_DB": str(store.root), "TESTING": True}).test_client()
    response = client.get("/v1/editorial/audit?page=3&page_size=4", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.get_json()
    assert [e["seq"] for e in response.get_json()] == [9, 10, 11, 12]
    assert json.loads(response.headers["X-Pagination"])["total"] == 13


def test_medkb_serve_upgrades_a_layout_1_store_and_serves_it(layout_1):
    from servers import medkb, serving

    with serving(layout_1, workers=1) as base:
        faq = requests.get(f"{base}/v1/faqs/drug-q1")
        assert faq.status_code == 200 and (faq.json()["revision"], faq.json()["answer"]) == (2, "Second.")
        assert requests.get(f"{base}/v1/faqs/drug-q2").status_code == 404
        assert requests.get(f"{base}/v1/articles/about-drug").status_code == 404
        feed = requests.get(f"{base}/v1/feed?since=9").json()
        assert [(c["seq"], c["op"], c["id"]) for c in feed["changes"]] == [
            (11, "upsert", "drug-q1"), (13, "delete", "drug-q2"), (15, "delete", "about-drug")]
    checked = medkb(layout_1, "check")
    assert checked.returncode == 0 and checked.stdout.strip().endswith("change sequence at 15: OK."), checked.stdout


def test_a_commit_after_a_rolled_back_one_leaves_no_temporary_behind(store, monkeypatch):
    import errno

    from api.store import files
    from api.store.records import StorageFull

    real = files.atomic_write

    def full_for_pointers(path, *args, **kwargs):
        if path.name == "pointers.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(files, "atomic_write", full_for_pointers)
        with pytest.raises(StorageFull):
            edit(store, answer="Rolled back after the previous pointers were linked.")
    edit(store, answer="Saved.")  # links the previous pointers again, onto the same file
    assert list(store.root.rglob(".*.tmp")) == []
    assert store.head("faq", "drug-q1").content["answer"] == "Saved." and store.verify() == []


def test_preview_replays_only_the_documents_that_changed(store):
    from api.store.draftmodel import DraftModel

    model = DraftModel(store, references)
    preview = Delivery(model)
    preview.refresh()
    assert preview.get("faq", "drug-q1").document["answer"] == "A1."
    # An untouched document's file, damaged: a full re-read would trip over it.
    (store.root / "documents" / "product" / "other" / "1.json").write_bytes(b"damaged")
    edit(store, answer="A draft, previewed.")
    content = dict(store.head("faq", "drug-q2").content, id="drug-q3", position=3)
    Documents(store).write(content, expected_revision=0, actor="ann")
    preview.refresh()
    assert preview.get("faq", "drug-q1").document["answer"] == "A draft, previewed."
    assert [entry.document["id"] for entry in preview.faqs(product="drug")] == ["drug-q1", "drug-q2", "drug-q3"]
    assert [entry.document["id"] for entry in model.all("faq")] == ["drug-q1", "drug-q2", "drug-q3"]
