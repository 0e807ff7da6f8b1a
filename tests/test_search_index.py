"""The search index in the store: one index for public search and preview, applied per change,
fitted to its store, never built by a request."""
import shutil

import pytest

from api.app import create_app
from api.services import search
from api.services.documents import Documents
from api.store.keys import KeyStore
from api.store.store import Store


@pytest.fixture
def app(content_db):
    return create_app({"MEDKB_DB": str(content_db), "MEDKB_CHECK_INTERVAL": 0})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def reviewer(content_db):
    return {"Authorization": f"Bearer {KeyStore(content_db).create('reviewer', 'rita')[1]}"}


def found(client, query, headers=None, preview=False):
    response = client.get(f"/v1/{'preview/' if preview else ''}search", query_string={"q": query}, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def edit(store, type_name, id_, publish=False, **fields):
    head = store.head(type_name, id_)
    Documents(store).write(dict(head.content, **fields), expected_revision=head.revision, actor="test", publish=publish)


def test_the_app_builds_the_index_at_start_up_not_on_a_request(content_db):
    assert not (content_db / "search").exists()
    create_app({"MEDKB_DB": str(content_db)})
    generation = search.search_files(Store(content_db)).open()
    assert generation.meta()["seq"] == Store(content_db).last_seq()


def test_a_request_never_builds_a_missing_index(app, client, content_db):
    shutil.rmtree(content_db / "search")
    edit(Store(content_db), "faq", "hemgenix-how-does-it-work", publish=True, answer="Something new.")
    response = client.get("/v1/search?q=hemgenix")
    assert response.status_code == 503 and "medkb search rebuild" in response.get_json()["detail"]
    assert not (content_db / "search").exists()


def test_a_draft_shows_in_preview_search_only_and_replaces_its_published_revision_there(client, content_db, reviewer):
    store = Store(content_db)
    edit(store, "product", "hemgenix", summary="Hemgenix, a xylophonic draft, is a one-time gene therapy.")
    assert found(client, "xylophonic") == []
    previewed = found(client, "xylophonic", reviewer, preview=True)
    assert [(r["type"], r["id"]) for r in previewed] == [("product", "hemgenix")]
    assert "<mark>xylophonic</mark>" in previewed[0]["snippet"]
    # Preview shows each document once, as its head: the published revision's rows are hidden there.
    assert [r["id"] for r in found(client, "hemgenix", reviewer, preview=True, ) if r["type"] == "product"] == ["hemgenix"]
    public = [r for r in found(client, "hemgenix") if r["type"] == "product"]
    assert [r["id"] for r in public] == ["hemgenix"] and "xylophonic" not in public[0]["snippet"]

    edit(store, "product", "hemgenix", publish=True, summary="Hemgenix, now xylophonic in public.")
    assert [r["id"] for r in found(client, "xylophonic")] == ["hemgenix"]
    assert [r["id"] for r in found(client, "xylophonic", reviewer, preview=True)] == ["hemgenix"]


def test_public_catch_up_reads_only_the_publication_log(client, content_db):
    store = Store(content_db)
    found(client, "hemgenix")
    edit(store, "faq", "hemgenix-how-does-it-work", answer="A draft nobody publishes.")
    edit(store, "faq", "hemgenix-does-it-change-my-dna", publish=True, answer="It does not change your xylophonic DNA.")
    meta_before = search.search_files(store).open().meta()
    assert [r["id"] for r in found(client, "xylophonic")] == ["hemgenix-does-it-change-my-dna"]
    meta = search.search_files(store).open().meta()
    # Publications are applied; the draft's change waits for preview.
    assert meta["seq"] == store.last_seq() and meta["draft_seq"] == meta_before["draft_seq"]


def test_unpublish_and_delete_leave_search(client, content_db):
    store = Store(content_db)
    documents = Documents(store)
    content = dict(store.head("faq", "hemgenix-how-does-it-work").content, id="hemgenix-extra", position=9,
                   question="Is there a xylophonic extra?")
    documents.write(content, expected_revision=0, actor="test", publish=True)
    assert [r["id"] for r in found(client, "xylophonic")] == ["hemgenix-extra"]
    documents.set_pointers("faq", "hemgenix-extra", expected_revision=1, changes={"published": None},
                           kind="unpublish", actor="test")
    assert found(client, "xylophonic") == []


def test_a_restored_store_is_refused_until_rebuilt(content_db, tmp_path):
    store = Store(content_db)
    search.prepare(store)
    edit(store, "faq", "hemgenix-how-does-it-work", publish=True, answer="Newer.")
    search.catch_up(store)
    # The store goes back (a backup restored) while the index stays ahead of it.
    files = search.search_files(store)
    meta = files.open().meta()
    with files.locked():
        files.apply(files.open(), dict(meta, seq=meta["seq"] + 100), lambda rows: None)
    with pytest.raises(search.SearchIndexUnavailable):
        search.catch_up(store)
    assert search.prepare(store) == ("rebuilt", store.last_seq())
    assert search.catch_up(store) == store.last_seq()
