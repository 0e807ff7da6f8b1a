"""The store's indexes (issue 12): the scheduler, the editorial lists and import read an index,
never every document; the index is derived data that a crash can leave behind but never wrong."""
import datetime
import subprocess
import sys
import threading

import pytest

from api.services.documents import Documents
from api.services.workflow import Editorial, Scheduler
from api.store import journal
from api.store.records import NEW_REVISION, Commit
from api.store.store import StorageFull, Store
from conftest import ROOT
from test_commit_failures import DiskFault, files_of, observe
from test_editorial import DOC, auth, create_faq, editorial_app, keys, medkb, step  # noqa: F401 (fixtures)

OPENED = None  # the list an audit hook adds opened paths to, while a test counts


def _count_opens(event, args):
    if event == "open" and OPENED is not None:
        OPENED.append(str(args[0]))


sys.addaudithook(_count_opens)


class counting_opens:
    """Every file this process opens meanwhile (Python's audit hook 'open': open(), os.open,
    Path.read_bytes), without touching the code under test."""

    def __enter__(self):
        global OPENED
        OPENED = self.paths = []
        return self.paths

    def __exit__(self, *exc):
        global OPENED
        OPENED = None


def faq_commit(n, **pointers):
    return Commit("faq", f"q-{n:05d}", "publish", "import", content={"type": "faq", "id": f"q-{n:05d}",
                                                                      "question": f"Question {n}?"},
                  pointers={"published": NEW_REVISION, "workflow": {"state": "published"}, **pointers})


def big_store(root, count):
    # The store only persists what it is given; validation is the services' (and costs more).
    store = Store(root, durable=False)
    for start in range(0, count, 1000):
        store.commit_batch([faq_commit(n) for n in range(start, min(count, start + 1000))])
    return store


def schedule(store, id_, when):
    state = store.state("faq", id_)
    return store.commit(Commit("faq", id_, "transition", "paul", expected_revision=state.head,
                               pointers={"workflow": {"state": "approved", "publish_at": when,
                                                      "approved": {"revision": state.head}}}))


# --- the scheduler -------------------------------------------------------------------------------

def test_an_idle_scheduler_tick_opens_no_document_of_ten_thousand(tmp_path):
    store = big_store(tmp_path / "db", 10_000)
    schedule(store, "q-00007", "2999-01-01T00:00:00Z")
    scheduler = Scheduler(Editorial(Store(tmp_path / "db")))
    with counting_opens() as opened:
        assert scheduler.tick() == []  # the first tick asks the index
        assert scheduler.tick() == []  # later ones look at head.json's stamp only
    assert [path for path in opened if path.endswith("pointers.json") or "/documents/" in path] == []
    assert scheduler.editorial.next_due() == datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC)


def test_a_commit_the_index_missed_is_replayed_and_its_schedule_kept(store):
    head = store.state("faq", "drug-q1").head
    due = "2000-01-01T00:00:00Z"
    # A writer that died between the commit point and its index update: the change is committed,
    # the index never heard of it.
    commit = Commit("faq", "drug-q1", "transition", "paul", expected_revision=head,
                    pointers={"workflow": {"state": "approved", "publish_at": due}})
    with store.writing():
        journal.commit(store.layout, commit, store.layout.read_pointers("faq", "drug-q1"), store.last_seq())
    assert store.indexes.applied_seq() == store.last_seq() - 1
    reopened = Store(store.root)
    assert [row["id"] for row in reopened.index().due("2001-01-01T00:00:00.000000Z")] == ["drug-q1"]
    assert reopened.indexes.applied_seq() == reopened.last_seq()


def test_the_index_file_is_derived_data_check_repair_rebuilds_it(store):
    before = [(row["type"], row["id"], row["state"], row["title"]) for row in store.index().documents()]
    changes = store.index().changes()
    for path in store.root.glob("indexes.sqlite*"):
        path.unlink()
    result = medkb(store.root, "check", "--repair")
    assert result.returncode == 0, result.stdout + result.stderr
    rebuilt = Store(store.root)
    assert [(row["type"], row["id"], row["state"], row["title"]) for row in rebuilt.index().documents()] == before
    assert rebuilt.index().changes() == changes == store.changes(0)


# --- batched commits -----------------------------------------------------------------------------

def batch(store):
    return store.commit_batch([faq_commit(n) for n in range(3)] + [
        Commit("faq", "drug-q1", "revision", "ann", expected_revision=1,
               content=dict(store.head("faq", "drug-q1").content, answer="Never seen."))])


@pytest.mark.parametrize("mode", ["once", "full", "after"])
def test_a_failure_at_any_stage_of_a_batch_leaves_no_trace(store, tmp_path, monkeypatch, mode):
    # pending; 3 new documents x (folder, revision, pointers); 1 edit x 3 files; the two logs; the sync; the commit point
    stages = 1 + 3 * 3 + 3 + 2 + 1 + 1
    for stage in range(1, stages + 1):
        root = tmp_path / f"{mode}-{stage}"
        subprocess.run(["cp", "-a", str(store.root), str(root)], check=True)
        target = Store(root)
        before, before_files = observe(target), files_of(root)
        with monkeypatch.context() as patch:
            DiskFault(patch, stage, mode)
            if mode == "after" and stage == stages:
                assert [c.seq for c in batch(target)] == list(range(before["last"] + 1, before["last"] + 5))
                continue
            with pytest.raises(StorageFull):
                batch(target)
            assert observe(target) == before, f"stage {stage}"
        reopened = Store(root)
        assert observe(reopened) == before and files_of(root) == before_files, f"stage {stage}"
        assert [c.seq for c in batch(reopened)] == list(range(before["last"] + 1, before["last"] + 5))
        assert reopened.verify() == []
        assert [row["id"] for row in reopened.index().documents(type_name="faq")][:3] == ["drug-q1", "drug-q2",
                                                                                           "q-00000"]


def test_a_batch_a_dead_writer_left_pending_is_rolled_back_on_open(store, monkeypatch):
    before = observe(store)
    with monkeypatch.context() as patch:
        DiskFault(patch, 9)  # part-way through the files
        patch.setattr(journal, "roll_back", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("dead")))
        with pytest.raises(StorageFull):
            batch(store)
    assert store.layout.read_head()["pending"]["batch"]
    reopened = Store(store.root)
    assert observe(reopened) == before and reopened.verify() == []


def test_import_commits_in_batches_and_keeps_every_rule(tmp_path, documents):
    store = Store(tmp_path / "db")
    extra = [dict(documents[6], id=f"drug-q{n}", position=n) for n in range(3, 203)]
    seen = []
    result = Documents(store).import_(documents + extra, actor="import", progress=lambda done, total: seen.append(done))
    assert len(result.written) == len(documents) + 200 and seen[-1] == len(documents) + 200 and len(seen) > 2
    assert [c.seq for c in store.changes(0)] == list(range(1, len(documents) + 201)) and store.verify() == []


# --- opening -------------------------------------------------------------------------------------

def test_opening_the_store_does_not_wait_for_a_writer(store):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from filelock import FileLock; lock = FileLock(sys.argv[1]); lock.acquire(); "
        "print('held', flush=True); time.sleep(120)"), str(store.layout.lock_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        opened = []
        opener = threading.Thread(target=lambda: opened.append(Store(store.root).state("faq", "drug-q1")), daemon=True)
        opener.start()
        opener.join(60)  # a deadline, not a measure: with the lock held elsewhere it would never end
        assert opened and opened[0].head == 1
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# --- editorial lists over the index --------------------------------------------------------------

def test_lists_page_over_the_index(editorial_app, keys):
    client = editorial_app.test_client()
    etag = create_faq(client, keys)
    for n in range(3):
        etag = client.patch(DOC, json={"question": f"How long, {n}?"},
                            headers={**auth(keys, "abe", etag), "Content-Type": "application/merge-patch+json"}
                            ).headers["ETag"]
    revisions = client.get(f"{DOC}/revisions?page=2&page_size=2", headers=auth(keys, "rita"))
    assert [r["revision"] for r in revisions.get_json()] == [3, 4]
    assert '"total": 4' in revisions.headers["X-Pagination"] and 'rel="first"' in revisions.headers["Link"]
    mine = client.get("/v1/editorial/audit?actor=abe&page_size=2", headers=auth(keys, "ada"))
    assert [e["to_revision"] for e in mine.get_json()] == [2, 3] and '"total": 3' in mine.headers["X-Pagination"]
    document = client.get("/v1/editorial/audit?document=faq/hemgenix-how-long-does-it-last", headers=auth(keys, "ada"))
    assert [(e["actor"], e["to_revision"]) for e in document.get_json()] == [("ann", 1), ("abe", 2), ("abe", 3),
                                                                             ("abe", 4)]
    first = document.get_json()[0]["at"]
    since = client.get(f"/v1/editorial/audit?document=faq/hemgenix-how-long-does-it-last&since={first}",
                       headers=auth(keys, "ada")).get_json()
    assert len(since) == 4
    drafts = client.get("/v1/editorial/documents?status=draft&type=faq", headers=auth(keys, "rita"))
    assert [(d["id"], d["head"]) for d in drafts.get_json()] == [("hemgenix-how-long-does-it-last", 4)]
    assert '"total": 1' in drafts.headers["X-Pagination"]
    submitted = step(client, keys, "ann", "submit", etag)
    assert submitted.status_code == 200
    assert client.get("/v1/editorial/documents?status=draft&type=faq", headers=auth(keys, "rita")).get_json() == []
