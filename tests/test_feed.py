"""The change feed: a consumer that replays it ends with exactly the published set."""
import pytest

from api.app import create_app
from api.services.documents import Documents
from api.store.store import Store


def sync(client, state, cursor=None, limit=3):
    """Follow the feed like a CMS build: apply every page until has_more is false."""
    calls = 0
    while True:
        url = f"/v1/feed?limit={limit}" + (f"&since={cursor}" if cursor is not None else "")
        page = client.get(url).get_json()
        calls += 1
        for change in page["changes"]:
            key = (change["type"], change["id"])
            if change["op"] == "upsert":
                assert change["document"]["revision"] == change["revision"]
                state[key] = change["document"]
            else:
                state.pop(key, None)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return cursor, calls
        assert calls < 100


def published_set(db):
    store = Store(db)
    return {(s.type, s.id): store.published(s.type, s.id).content for s in store.states() if s.published}


@pytest.fixture
def db(store):
    return store.root


@pytest.fixture
def feed_client(db):
    return create_app({"MEDKB_DB": str(db), "MEDKB_CHECK_INTERVAL": 0}).test_client()


def faq_content(store, id_="drug-q1"):
    return dict(store.head("faq", id_).content)


def test_initial_sync_without_a_cursor_is_every_published_document(feed_client, db):
    state = {}
    cursor, calls = sync(feed_client, state)
    assert state == published_set(db)
    assert calls == 3  # 9 documents, 3 a page
    assert cursor == str(Store(db).last_seq())


def test_deltas_bring_upserts_and_tombstones_in_order_and_never_drafts(feed_client, db):
    state = {}
    cursor, _ = sync(feed_client, state)
    store = Store(db)
    Documents(store).write(dict(faq_content(store), answer="A draft nobody may see."), expected_revision=1, actor="ann")
    draft_response = feed_client.get(f"/v1/feed?since={cursor}")
    draft_page = draft_response.get_json()
    # A draft moves nothing public: no change, the same cursor, the same tag.
    assert draft_page["changes"] == [] and draft_page["next_cursor"] == cursor
    assert feed_client.get(f"/v1/feed?since={cursor}", headers={
        "If-None-Match": draft_response.headers["ETag"]}).status_code == 304

    Documents(store).set_pointers("faq", "drug-q1", expected_revision=2, changes={"published": 2}, kind="publish", actor="pub")
    Documents(store).delete("article", "about-drug", expected_revision=1, actor="pub")
    Documents(store).set_pointers("faq", "drug-q2", expected_revision=1, changes={"published": None}, kind="unpublish", actor="pub")
    page = feed_client.get(f"/v1/feed?since={draft_page['next_cursor']}").get_json()
    assert [(c["op"], c["id"], c.get("reason")) for c in page["changes"]] == [
        ("upsert", "drug-q1", None), ("delete", "about-drug", "deleted"), ("delete", "drug-q2", "unpublished")]
    assert page["changes"][0]["document"]["answer"] == "A draft nobody may see."
    assert [c["seq"] for c in page["changes"]] == sorted(c["seq"] for c in page["changes"])

    sync(feed_client, state, cursor)
    assert state == published_set(db)


def test_replay_from_the_start_after_a_long_history_is_exactly_the_published_set(feed_client, db):
    store = Store(db)
    for n in range(5):
        head = store.head("faq", "drug-q1")
        Documents(store).write(dict(head.content, answer=f"Edit {n}."), expected_revision=head.revision, actor="ann",
                    publish=n % 2 == 0)
    Documents(store).set_pointers("faq", "drug-q2", expected_revision=1, changes={"published": None}, kind="unpublish", actor="pub")
    Documents(store).set_pointers("faq", "drug-q2", expected_revision=1, changes={"published": 1}, kind="publish", actor="pub")
    Documents(store).delete("article", "about-drug", expected_revision=1, actor="pub")
    state = {}
    sync(feed_client, state, limit=2)
    assert state == published_set(db)
    assert state[("faq", "drug-q1")]["answer"] == "Edit 4."
    first_sync = feed_client.get("/v1/feed?limit=500").get_json()["changes"]
    assert all(c["op"] == "upsert" for c in first_sync), "a first sync has nothing to delete"
    assert len(first_sync) == len(published_set(db)), "superseded versions are compacted away"


def test_cursors_survive_a_restart(db):
    state = {}
    cursor, _ = sync(create_app({"MEDKB_DB": str(db), "MEDKB_CHECK_INTERVAL": 0}).test_client(), state)
    store = Store(db)
    Documents(store).write(dict(faq_content(store), answer="After restart."), expected_revision=1, actor="ann", publish=True)
    restarted = create_app({"MEDKB_DB": str(db), "MEDKB_CHECK_INTERVAL": 0}).test_client()
    page = restarted.get(f"/v1/feed?since={cursor}").get_json()
    assert [(c["id"], c["document"]["answer"]) for c in page["changes"]] == [("drug-q1", "After restart.")]


def test_cursor_ahead_of_the_store_asks_for_a_resync(feed_client, db):
    response = feed_client.get(f"/v1/feed?since={Store(db).last_seq() + 1}")
    assert response.status_code == 409 and response.mimetype == "application/problem+json"
    assert "sync again from the start" in response.get_json()["detail"]


def test_a_cursor_another_worker_issued_is_followed_by_a_worker_that_has_not_caught_up(db):
    """Two workers over one store; the second looks for new commits only once an hour. A cursor
    the first issued after a publish is not "ahead of the store" on the second: it catches up and
    answers, rather than send the consumer back to a full sync."""
    first = create_app({"MEDKB_DB": str(db), "MEDKB_CHECK_INTERVAL": 0}).test_client()
    lagging = create_app({"MEDKB_DB": str(db), "MEDKB_CHECK_INTERVAL": 3600}).test_client()
    cursor = lagging.get("/v1/feed").get_json()["next_cursor"]
    store = Store(db)
    Documents(store).write(dict(faq_content(store), answer="Published meanwhile."), expected_revision=1, actor="ann",
                           publish=True)
    issued = first.get(f"/v1/feed?since={cursor}").get_json()
    assert [c["document"]["answer"] for c in issued["changes"]] == ["Published meanwhile."]
    followed = lagging.get(f"/v1/feed?since={issued['next_cursor']}")
    assert followed.status_code == 200, followed.get_json()
    assert followed.get_json() == {"changes": [], "next_cursor": issued["next_cursor"], "has_more": False}
    assert lagging.get("/v1/faqs/drug-q1").get_json()["answer"] == "Published meanwhile."


def test_drafts_never_reach_delivery_search_or_feed(feed_client, db):
    store = Store(db)
    urls = ("/v1/faqs/drug-q1", "/v1/faqs", "/v1/search?q=zanzibar", "/v1/products/drug?include=faqs")
    before = {url: feed_client.get(url).get_data() for url in urls}
    feed_before = feed_client.get("/v1/feed").get_json()["changes"]
    Documents(store).write(dict(faq_content(store), answer="Zanzibar draft."), expected_revision=1, actor="ann")
    Documents(store).write({**faq_content(store, "drug-q2"), "id": "drug-q3", "position": 3, "answer": "Zanzibar new."},
                expected_revision=0, actor="ann")
    for url, body in before.items():
        assert feed_client.get(url).get_data() == body, url
    # The cursor moves past draft changes, but no draft is in the feed.
    assert feed_client.get("/v1/feed").get_json()["changes"] == feed_before
    assert feed_client.get("/v1/faqs/drug-q3").status_code == 404
