"""GET /v1/bundle: the published set in one response, plus the feed cursor to follow from."""
import gzip

import time

import pytest
import requests

from api.services.documents import Documents
from api.app import create_app
from api.store.store import Store
from test_feed import published_set
from test_webhooks_serve import server  # noqa: F401 - the real `medkb serve` fixture


def bundle_set(body):
    return {(document["type"], document["id"]): document for document in body["documents"]}


def follow_feed(get, state, cursor):
    """Apply the feed from `cursor` to `state` until it has no more, like a mobile app coming online."""
    while True:
        page = get(f"/v1/feed?since={cursor}&limit=2")
        for change in page["changes"]:
            key = (change["type"], change["id"])
            if change["op"] == "upsert":
                state[key] = change["document"]
            else:
                state.pop(key, None)
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return cursor


@pytest.fixture
def db(store):
    return store.root


@pytest.fixture
def client(db):
    return create_app({"MEDKB_DB": str(db), "MEDKB_CHECK_INTERVAL": 0}).test_client()


def edit_faq(store, answer, publish=True):
    head = store.head("faq", "drug-q1")
    return Documents(store).write(dict(head.content, answer=answer), expected_revision=head.revision, actor="ann",
                       publish=publish)


def test_the_bundle_is_the_published_set_with_the_cursor_of_its_last_publication(client, db):
    response = client.get("/v1/bundle")
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert bundle_set(body) == published_set(db) and body["count"] == len(body["documents"]) == 9
    assert body["cursor"] == str(Store(db).last_seq())
    assert response.headers["Cache-Control"].startswith("public")


def test_the_bundle_never_carries_a_draft_and_is_rebuilt_only_when_publication_changes(client, db, app_bundles):
    store = Store(db)
    first = client.get("/v1/bundle")
    built = app_bundles(client).current()
    edit_faq(store, "A draft nobody may see.", publish=False)
    second = client.get("/v1/bundle")
    assert b"A draft nobody may see." not in second.data
    assert app_bundles(client).current() is built, "a draft does not rebuild the bundle"
    assert second.headers["ETag"] == first.headers["ETag"]
    assert client.get("/v1/bundle", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304

    change = edit_faq(store, "A1, published.")
    third = client.get("/v1/bundle")
    assert third.headers["ETag"] != first.headers["ETag"] and third.get_json()["cursor"] == str(change.seq)
    assert bundle_set(third.get_json())[("faq", "drug-q1")]["answer"] == "A1, published."


def test_the_bundle_is_compressed_once_per_encoding(client, app_bundles):
    import brotli

    plain = client.get("/v1/bundle")
    packed = client.get("/v1/bundle", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and len(packed.data) < len(plain.data)
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"' and "Accept-Encoding" in packed.headers["Vary"]
    assert packed.headers["Cache-Control"].startswith("public")
    again = client.get("/v1/bundle", headers={"Accept-Encoding": "gzip"})
    bundle = app_bundles(client).current()
    assert list(bundle._encoded) == ["gzip"] and again.data == packed.data, "compressed once, then reused"
    assert client.get("/v1/bundle", headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
                      ).status_code == 304
    best = client.get("/v1/bundle", headers={"Accept-Encoding": "br, gzip"})
    assert best.headers["Content-Encoding"] == "br" and brotli.decompress(best.data) == plain.data


@pytest.fixture
def app_bundles():
    return lambda client: client.application.extensions["medkb.bundles"]


def test_a_bundle_then_the_feed_from_its_cursor_is_the_published_set(server, content_db):  # noqa: F811
    session = requests.Session()
    response = session.get(f"{server}/v1/bundle")
    assert response.status_code == 200 and response.headers["Content-Encoding"] in ("gzip", "br")
    assert session.get(f"{server}/v1/bundle", headers={"If-None-Match": response.headers["ETag"]}).status_code == 304
    body = response.json()
    state = bundle_set(body)
    assert state == published_set(content_db)

    # The app was offline while editors worked: a publish, an unpublish, a new document, a draft.
    store = Store(content_db)
    head = store.head("faq", "hemgenix-how-does-it-work")
    Documents(store).write(dict(head.content, question="How does Hemgenix work, briefly?"), expected_revision=head.revision,
                actor="ann", publish=True)
    padua = store.state("faq", "hemgenix-what-is-the-padua-variant")
    unpublished = Documents(store).set_pointers("faq", "hemgenix-what-is-the-padua-variant",
                                                expected_revision=padua.head, changes={"published": None},
                                                kind="unpublish", actor="paul")
    head = store.head("product", "hemgenix")
    Documents(store).write(dict(head.content, summary="A draft summary."), expected_revision=head.revision, actor="ann")

    def get(path):
        return session.get(f"{server}{path}").json()

    # Each worker catches up within 0.1 s (DESIGN); wait until every answer has, as a client would.
    deadline = time.monotonic() + 10
    while not all(get("/readyz")["change"] >= unpublished.seq for _ in range(6)):
        assert time.monotonic() < deadline, "the publish never reached every worker"
        time.sleep(0.05)
    follow_feed(get, state, body["cursor"])
    assert state == published_set(content_db)
    assert state[("faq", "hemgenix-how-does-it-work")]["question"] == "How does Hemgenix work, briefly?"
    assert ("faq", "hemgenix-what-is-the-padua-variant") not in state
