"""The persisted read model: one file every process shares, opened rather than rebuilt, applied
per change, and left consistent by a process killed while applying."""
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from api.knowledge.documents import references
from api.services.delivery import Delivery
from api.services.documents import Documents
from api.store.draftmodel import DraftModel
from api.store.modelfile import FILE_NAME, ModelFile
from api.store.readmodel import ReadModel
from api.store.store import Store
from conftest import CONTENT, CONTENT_COUNT, ROOT
from servers import create_key, environment, medkb, serving


def meta(path):
    with contextlib.closing(sqlite3.connect(path)) as db:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())


def more_faqs(documents, count, start=3):
    template = next(d for d in documents if d["type"] == "faq")
    return [dict(template, id=f"drug-q{n:04d}", position=n, question=f"Q{n}?") for n in range(start, start + count)]


def everything(model):
    """All a reader can get from a model: every document's bytes, tag and revision, the feed index,
    the reference index and the counts."""
    types = ("source", "person", "condition", "product", "mechanism", "faq", "article")
    return {"documents": {t: [(e.body, e.etag, e.revision) for e in model.all(t)] for t in types},
            "feed": list(model.publications_after(0)), "published_seq": model.published_seq,
            "referrers": {key: model.referrers(*key) for key in [("product", "drug"), ("source", "src"), ("faq", "drug-q1")]},
            "count": model.count()}


def test_import_leaves_the_model_built_and_the_first_serve_only_opens_it(tmp_path):
    db = tmp_path / "db"
    result = medkb(db, "import", CONTENT)
    assert result.returncode == 0, result.stderr
    last = Store(db).last_seq()
    built = meta(db / FILE_NAME)
    assert built["builds"] == 1 and built["published_applied"] == built["head_applied"] == last
    # A first import builds it while it commits, in a process of its own: the same model.
    assert built["built"] == "beside the import"
    assert everything(ReadModel(Store(db), references)) == \
        everything(ReadModel(Store(db), references, path=tmp_path / "fresh.sqlite"))
    with serving(db) as base:
        assert requests.get(f"{base}/v1/products/hemgenix", timeout=5).status_code == 200
    assert meta(db / FILE_NAME)["builds"] == 1


def test_a_model_built_beside_an_import_is_the_one_built_after_it(tmp_path, documents):
    # The import commits in batches (of 50 here) while the build applies each as it lands.
    store = Store(tmp_path / "db", durable=False)
    status = []
    importing = threading.Thread(target=lambda: status.append(bool(
        Documents(store).import_(documents + more_faqs(documents, 300), actor="import"))))
    importing.start()
    model = ModelFile(tmp_path / "beside.sqlite", references)
    assert model.build_following(Store(store.root), lambda: status[0] if status else None)
    importing.join()
    assert meta(model.path)["built"] == "beside the import" and meta(model.path)["head_applied"] == store.last_seq()
    beside = ReadModel(store, references, path=model.path)
    assert beside.rebuilt is None, "opened as this store's model, up to date"
    assert everything(beside) == everything(ReadModel(store, references, path=tmp_path / "fresh.sqlite"))


@pytest.mark.parametrize("case", ["a document changed twice", "the import failed"])
def test_a_build_beside_an_import_that_cannot_hold_leaves_the_file_as_it_was(tmp_path, store, case):
    ReadModel(store, references).file.close()
    path = store.root / FILE_NAME
    before = meta(path)
    if case == "a document changed twice":
        # A store that was not empty, or another writer at work: its changes are not one per document.
        head = store.head("faq", "drug-q1")
        Documents(store).write(dict(head.content, answer="Changed."), expected_revision=1, actor="ann")
    assert not ModelFile(path, references).build_following(store, lambda: case == "a document changed twice")
    assert meta(path) == before
    model = ReadModel(store, references)
    assert model.rebuilt is None, "the file it left is caught up, not rebuilt"
    assert everything(model) == everything(ReadModel(store, references, path=tmp_path / "fresh.sqlite"))


def processes_running(marker):
    """Pids of processes whose command line holds `marker`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if marker.encode() in Path(entry.path, "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def test_an_import_killed_mid_commit_takes_its_model_build_with_it_and_the_next_import_finishes_both(tmp_path):
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    template = json.loads(next((content / "sources").glob("*.json")).read_text())
    for n in range(3000):
        (content / "sources" / f"bulk-{n:05d}.json").write_text(json.dumps(dict(template, id=f"bulk-{n:05d}")))
    db = tmp_path / "db"
    importing = subprocess.Popen([sys.executable, "-m", "api.cli", "import", str(content)], cwd=ROOT,
                                 env=environment(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in importing.stderr:
            if line.startswith("importing"):  # a batch is committed, and the model's build follows it
                break
        assert len(processes_running(str(content))) == 2, "the import and its model's build"
        importing.kill()
    finally:
        importing.wait(timeout=60)
        importing.stderr.close()
    assert 0 < Store(db).last_seq() < 3000 + CONTENT_COUNT, "killed part-way through its commits"
    deadline = time.monotonic() + 30
    while processes_running(str(content)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_running(str(content)), "the build noticed its importer was gone, and stopped"
    again = medkb(db, "import", content)
    assert again.returncode == 0, again.stderr
    store = Store(db)
    assert store.last_seq() == 3000 + CONTENT_COUNT and store.verify() == []
    assert everything(ReadModel(store, references)) == \
        everything(ReadModel(store, references, path=tmp_path / "fresh.sqlite"))


def test_restarted_serve_opens_the_model_it_left_and_reads_no_revision_file(content_db):
    model_path = content_db / FILE_NAME
    with serving(content_db) as base:
        assert requests.get(f"{base}/v1/products/hemgenix", timeout=5).status_code == 200
    assert meta(model_path)["builds"] == 1
    client = requests.Session()
    store = Store(content_db)
    head = store.head("faq", "hemgenix-how-does-it-work")
    Documents(store).write(dict(head.content, question="Edited while the server was down?"),
                           expected_revision=head.revision, actor="test", publish=True)
    # A revision no change since the last run touched, damaged: a start-up that rebuilt, or read
    # every document, would trip over it; one that opens the model never reads it.
    untouched = next((content_db / "documents" / "product" / "alprolix").glob("[0-9]*.json"))
    original = untouched.read_bytes()
    untouched.write_bytes(b"damaged")
    try:
        with serving(content_db) as base:
            product = client.get(f"{base}/v1/products/alprolix", timeout=5)
            assert product.status_code == 200 and product.json()["id"] == "alprolix"
            faq = client.get(f"{base}/v1/faqs/hemgenix-how-does-it-work", timeout=5).json()
            assert faq["question"] == "Edited while the server was down?"
            assert client.get(f"{base}/readyz", timeout=5).json()["change"] == store.last_seq()
    finally:
        untouched.write_bytes(original)
    after = meta(model_path)
    assert after["builds"] == 1 and after["published_applied"] == after["head_applied"] == store.last_seq()


def test_a_publish_through_one_worker_reaches_the_other_within_a_second(content_db):
    keys = {role: create_key(content_db, role, f"{role}-1") for role in ("author", "reviewer", "publisher")}
    url = "/v1/editorial/documents/faq/hemgenix-how-does-it-work"
    with serving(content_db, workers=2) as base:
        def as_(role, etag):
            return {"Authorization": f"Bearer {keys[role]}", "If-Match": etag}

        etag = requests.get(base + url, headers=as_("author", ""), timeout=5).headers["ETag"]
        response = requests.patch(base + url, json={"question": "Seen by every worker?"}, headers=as_("author", etag),
                                  timeout=10)
        assert response.status_code == 200, response.text
        for role, action in (("author", "submit"), ("reviewer", "approve"), ("publisher", "publish")):
            response = requests.post(f"{base}{url}/transitions", json={"action": action},
                                     headers=as_(role, response.headers["ETag"]), timeout=10)
            assert response.status_code == 200, response.text
        time.sleep(1.0)
        # Fresh connections spread over both workers: each shows the publish a second after it.
        answers = {requests.get(f"{base}/v1/faqs/hemgenix-how-does-it-work", timeout=5).json()["question"]
                   for _ in range(20)}
        assert answers == {"Seen by every worker?"}


KILLED_MID_APPLY = """
import sys
sys.path.insert(0, {root!r})
import api.store.modelfile
from api.knowledge.documents import references
from api.store.readmodel import ReadModel
from api.store.store import Store
api.store.modelfile.WINDOW = 1  # one change per transaction: many points to be killed between
ReadModel(Store({db!r}), references)
"""


def test_a_model_killed_mid_apply_catches_up_without_a_rebuild(tmp_path, documents):
    store = Store(tmp_path / "db", durable=False)
    Documents(store).import_(documents, actor="import")
    ReadModel(store, references).file.close()
    before = store.last_seq()
    Documents(store).import_(more_faqs(documents, 1000), actor="import")
    last = store.last_seq()
    model_path = store.root / FILE_NAME
    process = subprocess.Popen([sys.executable, "-c", KILLED_MID_APPLY.format(root=str(ROOT), db=str(store.root))])
    try:
        deadline = time.monotonic() + 60
        while meta(model_path)["published_applied"] <= before + 10 and time.monotonic() < deadline:
            time.sleep(0.002)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    killed_at = meta(model_path)["published_applied"]
    assert before < killed_at < last, "killed part-way through applying"
    model = ReadModel(store, references)
    assert model.rebuilt is None and meta(model_path)["builds"] == 1
    assert model.seq == last and model.count("faq") == 1002
    assert everything(model) == everything(ReadModel(store, references, path=tmp_path / "fresh.sqlite"))


def test_two_processes_catching_up_at_once_apply_each_change_once(tmp_path, documents):
    store = Store(tmp_path / "db", durable=False)
    Documents(store).import_(documents, actor="import")
    ReadModel(store, references).file.close()
    Documents(store).import_(more_faqs(documents, 300), actor="import")
    script = KILLED_MID_APPLY.format(root=str(ROOT), db=str(store.root))
    processes = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in processes] == [0, 0]
    model = ReadModel(store, references)
    assert model.count("faq") == 302 and len(model.all("faq")) == 302
    assert [seq for seq, *_ in model.publications_after(0)] == sorted({s.publication_seq for s in store.states()})
    assert everything(model) == everything(ReadModel(store, references, path=tmp_path / "fresh.sqlite"))


@pytest.mark.parametrize("other_store", ["same documents, another store", "a store ahead of this one"])
def test_a_model_made_from_another_store_is_rebuilt(tmp_path, documents, other_store):
    mine, other = Store(tmp_path / "mine"), Store(tmp_path / "other")
    Documents(mine).import_(documents, actor="import")
    Documents(other).import_(documents, actor="import")
    if other_store == "a store ahead of this one":
        Documents(other).import_(more_faqs(documents, 2), actor="import")
    ReadModel(other, references).file.close()
    shutil.copy(other.root / FILE_NAME, mine.root / FILE_NAME)
    model = ReadModel(mine, references)
    assert model.rebuilt and ("differs" in model.rebuilt or "ahead" in model.rebuilt)
    assert meta(mine.root / FILE_NAME)["builds"] == 2
    assert everything(model) == everything(ReadModel(mine, references, path=tmp_path / "fresh.sqlite"))


def test_a_model_of_another_format_is_rebuilt(store):
    path = store.root / FILE_NAME
    ReadModel(store, references).file.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = 1 WHERE key = 'format'")
        db.execute("DROP TABLE bodies")  # as an older medkb left it: other tables, other columns
    model = ReadModel(store, references)
    assert model.rebuilt.startswith("format 1") and meta(path)["builds"] == 2
    assert model.get("faq", "drug-q1").document["answer"] == "A1."


KILLED_MID_BUILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
import api.store.modelfile as modelfile
from api.knowledge.documents import references
from api.store.readmodel import ReadModel
from api.store.store import Store
modelfile._Batch.SIZE = 10
flush, flushed = modelfile._Batch.flush, []

def flush_then_die(batch):
    flush(batch)
    flushed.append(1)
    if len(flushed) == 5:  # half the rows written, no index made, nothing committed
        os.kill(os.getpid(), signal.SIGKILL)

modelfile._Batch.flush = flush_then_die
ReadModel(Store({db!r}), references)
"""


def test_a_build_killed_midway_leaves_the_file_as_it_was_and_the_next_open_rebuilds_it(tmp_path, documents):
    store = Store(tmp_path / "db", durable=False)
    Documents(store).import_(documents + more_faqs(documents, 100), actor="import")
    path = store.root / FILE_NAME
    ReadModel(store, references).file.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = 1 WHERE key = 'format'")
    before = everything(ReadModel(store, references, path=tmp_path / "before.sqlite"))
    process = subprocess.run([sys.executable, "-c", KILLED_MID_BUILD.format(root=str(ROOT), db=str(store.root))],
                             timeout=120)
    assert process.returncode == -signal.SIGKILL
    assert meta(path)["format"] == 1 and meta(path)["builds"] == 1, "the killed build committed nothing"
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM documents WHERE type = 'faq' AND view = 0").fetchone() == (102,)
    model = ReadModel(store, references)
    assert model.rebuilt.startswith("format 1") and meta(path)["builds"] == 2
    assert everything(model) == before


def test_lists_read_only_the_page_asked_for(tmp_path, documents):
    store = Store(tmp_path / "db", durable=False)
    Documents(store).import_(documents + more_faqs(documents, 300), actor="import")
    faqs = ReadModel(store, references).all("faq")
    ids = sorted(["drug-q1", "drug-q2", *(f"drug-q{n:04d}" for n in range(3, 303))])
    assert len(faqs) == 302
    assert [entry.document["id"] for entry in faqs[20:40]] == ids[20:40]
    assert [entry.document["id"] for entry in faqs[300:320]] == ids[300:]
    assert faqs[400:420] == [] and faqs[-1].document["id"] == ids[-1] and faqs[5].document["id"] == ids[5]
    assert [entry.document["id"] for entry in faqs[::100]] == ids[::100]
    assert [entry.document["id"] for entry in faqs[::-1]] == ids[::-1]
    assert [entry.document["id"] for entry in faqs[-20:-10]] == ids[-20:-10]
    assert faqs[10**19:10**19 + 20] == [] and len(faqs[300:10**19]) == 2
    with pytest.raises(IndexError):
        faqs[302]
    with pytest.raises(IndexError):
        faqs[10**19]


def test_the_model_file_can_live_outside_the_store(tmp_path, store):
    """Each API node over a shared database keeps its own file, where it is told."""
    node = tmp_path / "node" / "model.sqlite"
    model = ReadModel(store, references, path=node)
    preview = DraftModel(store, references, path=node)
    assert model.get("faq", "drug-q1").document["answer"] == "A1." and node.exists()
    assert preview.get("faq", "drug-q1").revision == 1
    assert not (store.root / FILE_NAME).exists()


def test_delivery_lookups_follow_each_change(store):
    model = ReadModel(store, references, check_interval=0)
    delivery = Delivery(model)
    assert [e.document["id"] for e in delivery.products(condition="cond")] == ["drug", "other"]
    assert [e.document["id"] for e in delivery.faqs_of("drug")] == ["drug-q1", "drug-q2"]
    filtered = {"drug_class": "b02bd1", "product_type": "gene_therapy"}  # an ATC code's prefix
    assert [e.document["id"] for e in delivery.products(**filtered)] == ["drug"]
    assert [e.document["id"] for e in delivery.products(drug_class="Factor IX", condition="cond")] == ["other"]
    assert len(delivery.products(drug_class="B02BD16", product_type="recombinant_factor")) == 0
    documents = Documents(store)
    documents.write(dict(store.head("condition", "cond").content, id="cond2"), expected_revision=0, actor="ann",
                    publish=True)
    other = store.head("product", "other").content
    documents.write(dict(other, conditions=["cond2"]), expected_revision=1, actor="ann", publish=True)
    faq = store.head("faq", "drug-q1").content
    documents.write(dict(faq, position=7), expected_revision=1, actor="ann", publish=True)
    delivery.refresh()
    assert [e.document["id"] for e in delivery.products(condition="cond")] == ["drug"]
    assert [e.document["id"] for e in delivery.products(condition="cond2")] == ["other"]
    assert [e.document["id"] for e in delivery.products(drug_class="factor ix")] == ["other"]
    assert [e.document["id"] for e in delivery.faqs_of("drug")] == ["drug-q2", "drug-q1"]
    assert delivery.mechanism_of("drug").document["id"] == "drug-mechanism"
    assert json.loads(model.get("faq", "drug-q1").body)["position"] == 7
