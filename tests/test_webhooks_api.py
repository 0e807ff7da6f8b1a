"""/v1/editorial/webhooks through the Flask test client: roles, refusals as problem+json, the documented shapes."""
import pytest

from api.services.documents import Documents
from api.app import create_app
from api.store.keys import KeyStore
from api.store.store import Store

HOOKS = "/v1/editorial/webhooks"


@pytest.fixture
def db(store):
    return store.root


@pytest.fixture
def client(db):
    return create_app({"MEDKB_DB": str(db), "TESTING": True, "MEDKB_WEBHOOK_ALLOW": "127.0.0.1"}).test_client()


@pytest.fixture
def admin(db):
    return {"Authorization": f"Bearer {KeyStore(db).create('admin', 'ada')[1]}"}


@pytest.fixture
def subscription(client, admin):
    response = client.post(HOOKS, json={"url": "http://127.0.0.1:9/hook", "events": ["publish"]}, headers=admin)
    assert response.status_code == 201
    return response.get_json()


def test_create_get_list_delete(client, admin, subscription, conforms, db):
    assert subscription["secret"].startswith("whsec_") and subscription["events"] == ["publish"]
    assert subscription["cursor"] == str(Store(db).last_seq()) and subscription["status"] == "active"
    one = client.get(f"{HOOKS}/{subscription['id']}", headers=admin)
    conforms(one, "/v1/editorial/webhooks/{id}")
    assert one.headers["Cache-Control"] == "private, no-store" and one.headers["ETag"]
    assert one.get_json() == {k: v for k, v in subscription.items() if k != "secret"}
    listed = client.get(HOOKS, headers=admin)
    conforms(listed, "/v1/editorial/webhooks")
    assert [s["id"] for s in listed.get_json()] == [subscription["id"]]
    assert client.delete(f"{HOOKS}/{subscription['id']}", headers=admin).status_code == 204
    gone = client.get(f"{HOOKS}/{subscription['id']}", headers=admin)
    assert gone.status_code == 404 and gone.mimetype == "application/problem+json"


@pytest.mark.parametrize("role, status", [("author", 403), ("reviewer", 403), ("publisher", 403)])
def test_only_admins_manage_webhooks(client, db, role, status):
    headers = {"Authorization": f"Bearer {KeyStore(db).create(role, 'someone')[1]}"}
    assert client.get(HOOKS, headers=headers).status_code == status
    assert client.post(HOOKS, json={"url": "http://127.0.0.1:9/"}, headers=headers).status_code == status
    assert client.get(HOOKS).status_code == 401


@pytest.mark.parametrize("path", [HOOKS, f"{HOOKS}/wh_00000000", f"{HOOKS}/wh_00000000/replay"])
def test_options_needs_no_key_and_shows_the_methods(client, path):
    response = client.options(path)
    assert response.status_code == 204 and "OPTIONS" in response.headers["Allow"]


@pytest.mark.parametrize("body, field", [
    ({"url": "http://192.168.0.10/hook"}, "url"),
    ({"url": "http://[::1]:8080/hook"}, "url"),
    ({"url": "file:///etc/passwd"}, "url"),
    ({"url": "http://127.0.0.1:9/", "events": ["edit"]}, "events"),
    ({"url": "http://127.0.0.1:9/", "events": []}, "events"),
    ({"url": "http://127.0.0.1:9/", "types": ["drug"]}, "types"),
    ({"url": "http://127.0.0.1:9/", "secret": "whsec_mine"}, "secret"),
    ({}, "url"),
    ({"url": 42}, "url"),
])
def test_invalid_subscriptions_are_refused_and_change_nothing(client, admin, body, field, conforms):
    response = client.post(HOOKS, json=body, headers=admin)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert field in response.get_json()["errors"]
    conforms(response, "/v1/editorial/webhooks", "post")
    assert client.get(HOOKS, headers=admin).get_json() == []


@pytest.mark.parametrize("path, body, status", [
    ("/wh_00000000/replay", {}, 404),
    ("/nothing/test", None, 404),
    ("/{id}/replay", {"since": "999999"}, 422),
    ("/{id}/replay", {"since": "-1"}, 422),
    ("/{id}/deliveries/msg_999999/replay", None, 404),
    ("/{id}/deliveries/not-an-id/replay", None, 422),
    ("/{id}/deliveries/msg_²/replay", None, 422),
])
def test_replays_of_what_does_not_exist_are_refused(client, admin, subscription, path, body, status):
    url = HOOKS + path.replace("{id}", subscription["id"])
    response = client.post(url, json=body, headers=admin) if body is not None else client.post(url, headers=admin)
    assert response.status_code == status and response.mimetype == "application/problem+json"
    assert "invalid literal" not in response.get_data(as_text=True)  # Python's words are not the API's
    assert client.get(f"{HOOKS}/{subscription['id']}", headers=admin).get_json()["queued_replays"] == []


def test_a_replay_is_queued_for_the_worker_and_shown(client, admin, subscription, db):
    store = Store(db)
    head = store.head("faq", "drug-q1")
    change = Documents(store).write(dict(head.content, answer="A1, again."), expected_revision=head.revision, actor="ann",
                         publish=True)
    response = client.post(f"{HOOKS}/{subscription['id']}/deliveries/msg_{change.seq}/replay", headers=admin)
    assert response.status_code == 202 and response.get_json()["queued_replays"] == [f"msg_{change.seq}"]
    log = client.get(f"{HOOKS}/{subscription['id']}/log?limit=5", headers=admin)
    assert log.status_code == 200 and log.get_json() == [], "nothing is sent until the worker runs"
    missing = client.get(f"{HOOKS}/wh_00000000/log", headers=admin)
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
