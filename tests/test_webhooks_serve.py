"""Webhooks through real processes: `medkb serve` (gunicorn) and `medkb worker`, a real receiver, `requests`."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

from api.services.documents import Documents
from api.store.keys import KeyStore
from api.store.store import Store
from conftest import ROOT
from servers import serving
from test_production import sample
from webhook_receiver import Receiver

FAST_RETRIES = {"MEDKB_WEBHOOK_ALLOW": "127.0.0.1", "MEDKB_WEBHOOK_BACKOFF": "0.05",
                "MEDKB_WEBHOOK_BACKOFF_MAX": "0.2"}


def start(db, *arguments):
    return subprocess.Popen([sys.executable, "-m", "api.cli", *arguments], cwd=ROOT,
                            env={**os.environ, **FAST_RETRIES, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(process, sig=signal.SIGTERM):
    os.killpg(process.pid, sig)
    process.wait(timeout=30)


@pytest.fixture
def server(content_db):
    with serving(content_db, env=FAST_RETRIES) as base:
        yield base


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def admin(content_db):
    return {"Authorization": f"Bearer {KeyStore(content_db).create('admin', 'ada')[1]}"}


FAQ = ("faq", "hemgenix-how-does-it-work")


def publish_edit(db, text, key=FAQ):
    store = Store(db)
    head = store.head(*key)
    return Documents(store).write(dict(head.content, question=text), expected_revision=head.revision, actor="test",
                       publish=True)


def test_admins_manage_subscriptions_and_serve_delivers_signed_messages(server, content_db, receiver, admin):
    hooks = f"{server}/v1/editorial/webhooks"
    refused = requests.post(hooks, json={"url": "http://169.254.169.254/latest/meta-data"}, headers=admin)
    assert refused.status_code == 422 and refused.headers["Content-Type"] == "application/problem+json"
    assert "url" in refused.json()["errors"]
    author = {"Authorization": f"Bearer {KeyStore(content_db).create('author', 'ann')[1]}"}
    assert requests.post(hooks, json={"url": receiver.url()}, headers=author).status_code == 403
    assert requests.get(hooks).status_code == 401

    created = requests.post(hooks, json={"url": receiver.url(), "types": ["faq"]}, headers=admin)
    assert created.status_code == 201, created.text
    subscription = created.json()
    receiver.secrets["hook"] = subscription["secret"]
    assert "secret" not in requests.get(f"{hooks}/{subscription['id']}", headers=admin).json()

    change = publish_edit(content_db, "How does Hemgenix work, in brief?")
    # No request to the server: its own scheduler finds the change and sends it.
    assert receiver.wait_for(lambda: len(receiver.received) == 1)
    [message] = receiver.messages()
    assert message["type"] == "publish" and message["cursor"] == str(change.seq)
    assert message["data"]["document"]["question"] == "How does Hemgenix work, in brief?"
    # The cursor is a feed cursor: the feed from just before it starts with the same entry, once the
    # publish has reached the worker that answers (within a second, DESIGN says; the webhook, sent
    # from the store by the scheduler, can arrive first).
    deadline = time.monotonic() + 5
    while not (feed := requests.get(f"{server}/v1/feed", params={"since": change.seq - 1}).json())["changes"]:
        assert time.monotonic() < deadline, "the publish never reached the feed"
        time.sleep(0.05)
    assert feed["changes"][0] == message["data"]

    log = requests.get(f"{hooks}/{subscription['id']}/log", headers=admin)
    assert log.status_code == 200
    [attempt] = log.json()
    assert attempt["delivery_id"] == f"msg_{change.seq}" and attempt["status"] == 204 and attempt["error"] is None
    assert attempt["latency_ms"] >= 0

    replay = requests.post(f"{hooks}/{subscription['id']}/deliveries/msg_{change.seq}/replay", headers=admin)
    assert replay.status_code == 202
    assert receiver.wait_for(lambda: len(receiver.received) == 2)
    assert receiver.ids() == [f"msg_{change.seq}"] * 2

    rewound = requests.post(f"{hooks}/{subscription['id']}/replay", json={"since": str(change.seq - 1)}, headers=admin)
    assert rewound.status_code == 202 and rewound.json()["cursor"] == str(change.seq - 1)
    assert receiver.wait_for(lambda: len(receiver.received) == 3)

    tested = requests.post(f"{hooks}/{subscription['id']}/test", headers=admin)
    assert tested.status_code == 200 and tested.json()["ok"] is True
    assert receiver.messages()[-1]["type"] == "test" and receiver.rejected == []

    assert requests.delete(f"{hooks}/{subscription['id']}", headers=admin).status_code == 204
    assert requests.get(f"{hooks}/{subscription['id']}", headers=admin).status_code == 404
    assert requests.get(hooks, headers=admin).json() == []

    # The scheduler's three deliveries (the change, its replay, the rewind) are in the metrics.
    scraped = requests.get(f"{server}/metrics", headers=admin).text
    assert sample(scraped, "medkb_webhook_deliveries_total", outcome="delivered") == 3
    assert sample(scraped, "medkb_webhook_delivery_duration_seconds_count", outcome="delivered") == 3


def test_serve_and_a_worker_on_one_store_never_both_send_a_change(server, content_db, receiver, admin):
    created = requests.post(f"{server}/v1/editorial/webhooks", json={"url": receiver.url()}, headers=admin).json()
    receiver.secrets["hook"] = created["secret"]
    worker = start(content_db, "worker", "--interval", "0.05")
    try:
        receiver.delay = 0.3  # deliveries take long enough for both schedulers to tick during them
        changes = [publish_edit(content_db, f"How does Hemgenix work? ({n})") for n in range(8)]
        assert receiver.wait_for(lambda: len(receiver.received) >= 8)
        time.sleep(1.5)  # let both schedulers tick again: a late double send would show now
    finally:
        stop(worker)
    assert receiver.ids() == [f"msg_{c.seq}" for c in changes]


def test_killing_the_worker_mid_delivery_loses_nothing(content_db, receiver):
    from api.services.webhooks import Settings, Webhooks, parse_allow

    subscription = Webhooks(Store(content_db), Settings(allow=parse_allow("127.0.0.1"))).subscribe(receiver.url())
    receiver.secrets["hook"] = subscription.secret
    keys = [FAQ, ("faq", "hemgenix-what-is-the-padua-variant"), FAQ, ("product", "hemgenix"), FAQ]
    changes = []
    for n, key in enumerate(keys):
        store = Store(content_db)
        head = store.head(*key)
        field = "question" if key[0] == "faq" else "summary"
        changes.append(Documents(store).write(dict(head.content, **{field: f"{head.content[field]} ({n})"}),
                                   expected_revision=head.revision, actor="test", publish=True))

    receiver.hold = threading.Event()
    worker = start(content_db, "worker", "--interval", "0.05")
    try:
        # The first delivery is inside the receiver, not yet answered, when the worker dies.
        assert receiver.wait_for(lambda: receiver.in_flight == 1)
        stop(worker, signal.SIGKILL)
    finally:
        if worker.poll() is None:
            stop(worker, signal.SIGKILL)
    receiver.hold.set()
    assert receiver.wait_for(lambda: receiver.in_flight == 0)
    worker = start(content_db, "worker", "--interval", "0.05")
    try:
        expected = [f"msg_{c.seq}" for c in changes]
        assert receiver.wait_for(lambda: set(expected) <= set(receiver.ids()))
    finally:
        stop(worker)
    ids = receiver.ids()
    # At least once: the message the worker died on may come twice, with the same webhook-id for
    # the receiver to spot; everything else exactly once, in commit order.
    assert [i for n, i in enumerate(ids) if i not in ids[:n]] == expected
    assert len(ids) <= len(expected) + 1 and receiver.rejected == []
    by_document = {}
    for message in receiver.messages():
        by_document.setdefault((message["data"]["type"], message["data"]["id"]), []).append(message["data"]["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_document.values()), "in order per document"


def test_a_receiver_down_for_a_while_gets_everything_in_order_from_the_worker(content_db, receiver):
    from api.services.webhooks import Settings, Webhooks, parse_allow

    service = Webhooks(Store(content_db), Settings(allow=parse_allow("127.0.0.1")))
    subscription = service.subscribe(receiver.url())
    receiver.secrets["hook"] = subscription.secret
    receiver.status = 503
    worker = start(content_db, "worker", "--interval", "0.05")
    try:
        changes = [publish_edit(content_db, f"How does Hemgenix work? ({n})") for n in range(3)]
        changes.append(publish_edit(content_db, "What is the Padua variant?",
                                    ("faq", "hemgenix-what-is-the-padua-variant")))
        # Down: the first change is tried again and again (with backoff), nothing after it jumps the queue.
        assert receiver.wait_for(lambda: len(service.log(subscription.id)) >= 3)
        assert {entry["delivery_id"] for entry in service.log(subscription.id)} == {f"msg_{changes[0].seq}"}
        receiver.status = 200
        assert receiver.wait_for(lambda: len(receiver.received) == len(changes))
    finally:
        stop(worker)
    assert receiver.ids() == [f"msg_{c.seq}" for c in changes]
    assert [m["data"]["document"]["revision"] for m in receiver.messages()] == [2, 3, 4, 2]
    assert service.get(subscription.id)[1].failures == 0
