"""The search index in the store, through real processes: `medkb serve` workers see every publish
and unpublish within a second, the index outlives a restart unrebuilt, and processes applying the
same changes at once leave each document indexed once."""
import shutil
import subprocess
import sys
import time

import pytest
import requests
import tantivy

from api.services import search
from api.services.documents import Documents
from api.store.searchindex import KEY
from api.store.store import Store
from conftest import ROOT
from servers import environment, medkb, serving

NEW_ID = "hemgenix-how-long-does-it-last"
NEW_FAQ = {"type": "faq", "id": NEW_ID, "schema_version": 3, "locale": "en-US", "product": "hemgenix", "position": 5,
           "question": "How long does Hemgenix keep working?",
           "answer": "In the HOPE-B trial, xylophonic factor IX levels stayed stable in most patients over 5 years.",
           "citations": [{"source": "medfinder-how-does-hemgenix-work", "locator": "Step 4: Factor IX Production Begins"}]}
FAQ = f"/v1/editorial/documents/faq/{NEW_ID}"
WORD = "xylophonic"


@pytest.fixture
def secrets(content_db):
    from api.store.keys import KeyStore

    keys = KeyStore(content_db)
    return {name: keys.create(role, name)[1] for name, role in
            [("ann", "author"), ("rita", "reviewer"), ("paul", "publisher")]}


def bearer(secrets, who, etag=None):
    return {"Authorization": f"Bearer {secrets[who]}", **({"If-Match": etag} if etag else {})}


def found_ids(base, query):
    # A new connection per request, so that requests spread over every worker.
    with requests.Session() as session:
        response = session.get(f"{base}/v1/search", params={"q": query}, headers={"Connection": "close"}, timeout=5)
    assert response.status_code == 200, response.text
    return [result["id"] for result in response.json()["results"]]


def every_worker_answers(base, query, expected, requests_count=20):
    """Whether `requests_count` requests, spread over the workers, all find (or all miss) the FAQ."""
    return all((NEW_ID in found_ids(base, query)) == expected
               for _ in range(requests_count))


def wait_one_second_then_check(base, query, expected, since):
    """The 1 s budget of DESIGN: wait for it to pass, then every worker must already agree."""
    time.sleep(max(0.0, 1.0 - (time.monotonic() - since)))
    return every_worker_answers(base, query, expected)


def index_state(db):
    files = search.search_files(Store(db))
    generation = files.open()
    return files.current_name(), generation.meta()


def test_publish_and_unpublish_reach_every_workers_search_within_a_second(content_db, secrets):
    with serving(content_db) as base:
        assert every_worker_answers(base, WORD, False)
        created = requests.post(f"{base}/v1/editorial/documents", json=NEW_FAQ, headers=bearer(secrets, "ann"))
        assert created.status_code == 201, created.text
        etag = created.headers["ETag"]
        for who, action in (("ann", "submit"), ("rita", "approve")):
            done = requests.post(f"{base}{FAQ}/transitions", json={"action": action}, headers=bearer(secrets, who, etag))
            assert done.status_code == 200, done.text
        assert every_worker_answers(base, WORD, False), "a draft never reaches search"

        published = requests.post(f"{base}{FAQ}/transitions", json={"action": "publish"},
                                  headers=bearer(secrets, "paul", etag))
        assert published.status_code == 200, published.text
        assert wait_one_second_then_check(base, WORD, True, time.monotonic())
        assert found_ids(base, "xylophnic")[0] == NEW_ID, "typos reach terms new to the index"

        etag = published.headers["ETag"]
        unpublished = requests.post(f"{base}{FAQ}/transitions", json={"action": "unpublish"},
                                    headers=bearer(secrets, "paul", etag))
        assert unpublished.status_code == 200, unpublished.text
        assert wait_one_second_then_check(base, WORD, False, time.monotonic())
        assert every_worker_answers(base, "hemgenix keep working", False)


def test_the_index_survives_a_restart_without_a_rebuild(content_db):
    with serving(content_db) as base:
        assert "hemgenix" in found_ids(base, "hemgenix")
    before = index_state(content_db)
    assert before[1]["seq"] == before[1]["draft_seq"] == Store(content_db).last_seq()
    with serving(content_db) as base:
        assert "hemgenix" in found_ids(base, "hemgenx")
    assert index_state(content_db) == before, "same generation, same applied change: nothing was rebuilt"


def test_serve_rebuilds_an_index_that_belongs_to_another_store(content_db, tmp_path):
    other = tmp_path / "other"
    assert medkb(other, "import", ROOT / "content").returncode == 0
    # The other store's index, copied into this one: the same documents, another identity.
    shutil.rmtree(content_db / "search", ignore_errors=True)
    shutil.copytree(other / "search", content_db / "search")
    assert index_state(content_db)[1]["identity"] == search.store_identity(Store(other))
    with serving(content_db) as base:
        assert "hemgenix" in found_ids(base, "hemgenix")
    assert index_state(content_db)[1]["identity"] == search.store_identity(Store(content_db))


def test_medkb_search_rebuild_makes_a_new_generation(content_db):
    search.prepare(Store(content_db))
    before = index_state(content_db)
    done = medkb(content_db, "search", "rebuild")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"search index rebuilt at change {Store(content_db).last_seq()}."
    after = index_state(content_db)
    assert after[0] != before[0] and after[1] == before[1]
    assert [path.name for path in (content_db / "search").iterdir() if path.is_dir()] == [after[0]]


CATCH_UP = """
import sys
from api.services import search
from api.store.store import Store
sys.stdin.readline()  # released together
print(search.catch_up(Store(sys.argv[1])))
"""


def test_processes_applying_the_same_changes_at_once_leave_one_entry_per_document(content_db):
    store = Store(content_db)
    search.prepare(store)
    # Publish straight into the store: no process has applied these changes to the index yet.
    documents = Documents(store)
    edited = []
    for id_ in ("hemgenix-what-is-the-padua-variant", "hemgenix-how-does-it-work", "hemgenix-does-it-change-my-dna"):
        head = store.head("faq", id_)
        documents.write(dict(head.content, answer=f"{head.content['answer']} {WORD}"),
                        expected_revision=head.revision, actor="test", publish=True)
        edited.append(id_)
    racers = [subprocess.Popen([sys.executable, "-c", CATCH_UP, str(content_db)], cwd=ROOT, env=environment(content_db),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(4)]
    outputs = [racer.communicate("go\n", timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), outputs
    assert {out.strip() for out, _ in outputs} == {str(store.last_seq())}

    generation = search.search_files(store).open()
    searcher = generation.searcher()
    for id_ in edited:
        query = tantivy.Query.term_query(generation.schema, KEY, f"faq/{id_}")
        assert len(searcher.search(query, 10).hits) == 1, id_
    hemgenix = tantivy.Query.term_query(generation.schema, KEY, "product/hemgenix")
    assert len(searcher.search(hemgenix, 10).hits) == 1
