"""Webhooks: signed deliveries of publication changes to a real receiver on loopback, through real files."""
import datetime
import threading
import time

import pytest

from api.services.documents import Documents
from api.services.webhooks import Settings, Webhooks, parse_allow
from api.services.workflow import Editorial
from api.store.keys import ApiKey
from webhook_receiver import Receiver

FAST = dict(allow=parse_allow("127.0.0.1"), backoff=0.05, backoff_max=0.2, read_timeout=5)


def key(name, role):
    return ApiKey(id=f"k_{name}", name=name, role=role, created_at="", revoked_at=None)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def store(any_store):
    """Every test here runs on both store backends: subscriptions, cursors, logs and leases live
    in files beside the file store, in tables beside PostgreSQL."""
    return any_store


@pytest.fixture
def empty_store(tmp_path):
    from api.store.store import Store

    return Store(tmp_path / "empty")


@pytest.fixture
def service(store):
    return Webhooks(store, Settings(**FAST))


def subscribe(service, receiver, name="hook", **options):
    subscription = service.subscribe(receiver.url(name), **options)
    receiver.secrets[name] = subscription.secret
    return subscription


def publish_new_faq(store, id_="drug-q3", answer="A3."):
    faq = dict(store.head("faq", "drug-q1").content, id=id_, position=3, question="Q3?", answer=answer)
    head = store.head("faq", id_)
    return Documents(store).write(faq, expected_revision=head.revision if head else 0, actor="ann", publish=True)


def run_tick(service):
    """One scheduler tick, then wait for the delivery runs it started (each really sends, over loopback)."""
    service.tick()
    for future in list(service._running.values()):
        future.result()


def deliver_all(service):
    """Tick until nothing is due, whatever the backoff."""
    for _ in range(200):
        run_tick(service)
        if not service.due(now=float("inf")):
            return
        time.sleep(0.02)
    raise AssertionError("deliveries did not settle")


def test_subscribing_gives_a_standard_webhooks_secret_once(service, receiver):
    subscription = subscribe(service, receiver, events=["publish"], types=["faq"])
    assert subscription.secret.startswith("whsec_") and len(subscription.secret) > 30
    listed = service.list()
    assert [(s.id, s.events, s.types) for s, _ in listed] == [(subscription.id, ("publish",), ("faq",))]
    assert listed[0][1].cursor == service.store.last_seq(), "a subscription starts with the next change"


def test_publish_unpublish_delete_and_scheduled_publish_each_deliver_exactly_once(store, service, receiver):
    subscribe(service, receiver)
    editorial = Editorial(store)
    admin, author, reviewer = key("ada", "admin"), key("ann", "author"), key("rita", "reviewer")

    published = publish_new_faq(store)
    deliver_all(service)
    unpublished = editorial.transition("faq", "drug-q3", "unpublish", published.revision, admin)
    deliver_all(service)
    deleted = Documents(store).delete("faq", "drug-q3", expected_revision=published.revision, actor="ada")
    deliver_all(service)
    # A draft, its review and a schedule are not publication changes: nothing is sent for them.
    head = store.head("faq", "drug-q1")
    editorial.replace("faq", "drug-q1", dict(head.content, answer="A1, revised."), head.revision, author)
    editorial.transition("faq", "drug-q1", "submit", head.revision + 1, author)
    editorial.transition("faq", "drug-q1", "approve", head.revision + 1, reviewer)
    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1)).isoformat()
    editorial.transition("faq", "drug-q1", "publish", head.revision + 1, admin, publish_at=later)
    deliver_all(service)
    assert len(receiver.received) == 3
    [scheduled] = editorial.publish_due(now=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=2))
    deliver_all(service)

    assert receiver.rejected == []
    messages = receiver.messages()
    assert [m["type"] for m in messages] == ["publish", "unpublish", "delete", "scheduled_publish"]
    assert receiver.ids() == [f"msg_{c.seq}" for c in (published, unpublished, deleted, scheduled)]
    assert [m["cursor"] for m in messages] == [str(c.seq) for c in (published, unpublished, deleted, scheduled)]
    first, second, third, fourth = (m["data"] for m in messages)
    assert first == {"seq": published.seq, "op": "upsert", "type": "faq", "id": "drug-q3", "revision": 1,
                     "document": store.revision("faq", "drug-q3", 1).content}
    assert second == {"seq": unpublished.seq, "op": "delete", "type": "faq", "id": "drug-q3", "reason": "unpublished"}
    assert third == {"seq": deleted.seq, "op": "delete", "type": "faq", "id": "drug-q3", "reason": "deleted"}
    assert fourth["op"] == "upsert" and fourth["document"]["answer"] == "A1, revised."
    assert fourth["document"] == store.published("faq", "drug-q1").content


def test_event_and_type_filters_choose_what_is_sent(store, service, receiver):
    subscribe(service, receiver, "faqs", events=["publish"], types=["faq"])
    subscribe(service, receiver, "products", types=["product"])
    published = publish_new_faq(store)
    Documents(store).delete("faq", "drug-q3", expected_revision=published.revision, actor="ada")
    product = store.head("product", "other")
    Documents(store).write(dict(product.content, summary="Another, revised."), expected_revision=product.revision, actor="ann",
                publish=True)
    deliver_all(service)
    assert [(m["type"], m["data"]["id"]) for m in receiver.messages("faqs")] == [("publish", "drug-q3")]
    assert [(m["type"], m["data"]["id"]) for m in receiver.messages("products")] == [("publish", "other")]
    assert all(state.cursor == store.last_seq() for _, state in service.list())


def test_a_receiver_that_is_down_gets_everything_in_order_once_it_answers(store, service, receiver):
    subscription = subscribe(service, receiver)
    receiver.status = 503
    changes = [publish_new_faq(store, answer=f"A3 v{n}.") for n in range(1, 4)]
    changes.append(publish_new_faq(store, "drug-q4", answer="A4."))
    # Ticks as the scheduler makes them: a run starts only once the backoff has passed.
    assert receiver.wait_for(lambda: run_tick(service) or service.get(subscription.id)[1].failures >= 3)
    _, state = service.get(subscription.id)
    assert state.failures >= 3 and state.cursor == changes[0].seq - 1 and state.last_error == "HTTP 503"
    assert state.next_attempt_at > 0
    log = service.log(subscription.id)
    assert {entry["status"] for entry in log} == {503} and all(entry["delivery_id"] == f"msg_{changes[0].seq}"
                                                              for entry in log)
    assert [entry["attempt"] for entry in reversed(log)] == list(range(1, len(log) + 1))

    receiver.status = 200
    deliver_all(service)
    assert receiver.ids() == [f"msg_{c.seq}" for c in changes], "each change once, in commit order"
    assert [m["data"].get("revision") for m in receiver.messages()] == [1, 2, 3, 1]
    _, state = service.get(subscription.id)
    assert (state.failures, state.last_error, state.status) == (0, None, "active")


def test_after_giving_up_it_is_failing_keeps_what_is_undelivered_and_a_replay_resumes(store, receiver):
    service = Webhooks(store, Settings(**{**FAST, "give_up": 0}))
    subscription = subscribe(service, receiver)
    receiver.status = 500
    change = publish_new_faq(store)
    deliver_all(service)
    _, state = service.get(subscription.id)
    assert (state.status, state.cursor) == ("failing", change.seq - 1)
    assert service.due(now=float("inf")) == [], "a failing subscription waits for an admin"

    receiver.status = 200
    service.replay_from(subscription.id)
    deliver_all(service)
    assert receiver.ids() == [f"msg_{change.seq}"]
    assert service.get(subscription.id)[1].status == "active"


def test_replay_by_delivery_id_and_from_a_cursor(store, service, receiver):
    subscription = subscribe(service, receiver)
    start = store.last_seq()
    first, second = publish_new_faq(store), publish_new_faq(store, "drug-q4")
    deliver_all(service)
    assert receiver.ids() == [f"msg_{first.seq}", f"msg_{second.seq}"]

    service.replay_delivery(subscription.id, f"msg_{first.seq}")
    deliver_all(service)
    assert receiver.ids()[2:] == [f"msg_{first.seq}"]
    assert receiver.messages()[2] == receiver.messages()[0], "a replay carries the same message"
    assert service.log(subscription.id, limit=1)[0]["replay"] is True

    service.replay_from(subscription.id, start)
    deliver_all(service)
    assert receiver.ids()[3:] == [f"msg_{first.seq}", f"msg_{second.seq}"]
    assert service.get(subscription.id)[1].cursor == second.seq


@pytest.mark.parametrize("delivery", ["msg_abc", "42", "", "msg_99999"])
def test_replaying_something_that_is_not_a_delivery_is_refused(empty_store, receiver, delivery):
    from api.services.webhooks import InvalidSubscription, SubscriptionNotFound

    service = Webhooks(empty_store, Settings(**FAST))
    subscription = subscribe(service, receiver)
    with pytest.raises((InvalidSubscription, SubscriptionNotFound)):
        service.replay_delivery(subscription.id, delivery)
    assert service.get(subscription.id)[1].replays == []


def test_a_slow_receiver_times_out_and_is_retried(store, receiver):
    service = Webhooks(store, Settings(**{**FAST, "read_timeout": 0.2}))
    subscription = subscribe(service, receiver)
    receiver.delay = 1.0
    publish_new_faq(store)
    service.deliver(subscription.id)
    [attempt] = service.log(subscription.id)
    assert attempt["status"] is None and "timed out" in attempt["error"]
    assert service.get(subscription.id)[1].failures == 1


def test_redirects_are_not_followed(store, service, receiver):
    subscription = subscribe(service, receiver)
    receiver.secrets["elsewhere"] = subscription.secret
    receiver.status, receiver.redirect_to = 307, receiver.url("elsewhere")
    publish_new_faq(store)
    service.deliver(subscription.id)
    [attempt] = service.log(subscription.id)
    assert attempt["status"] == 307 and "not followed" in attempt["error"]
    assert receiver.messages("elsewhere") == [] and service.get(subscription.id)[1].failures == 1


def test_a_host_name_is_resolved_checked_and_each_of_its_addresses_tried(store, receiver):
    # localhost may resolve to ::1 first, where nothing listens: the next checked address is tried.
    service = Webhooks(store, Settings(**{**FAST, "allow": parse_allow("127.0.0.1,::1")}))
    subscription = service.subscribe(f"http://localhost:{receiver.port}/hooks/hook")
    receiver.secrets["hook"] = subscription.secret
    change = publish_new_faq(store)
    service.deliver(subscription.id)
    assert receiver.ids() == [f"msg_{change.seq}"]


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for localhost, made with openssl for this test."""
    import shutil
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_https_goes_to_the_checked_address_and_verifies_the_certificate_of_the_host(store, certificate,
                                                                                   monkeypatch):
    service = Webhooks(store, Settings(**FAST))
    with Receiver(tls=certificate) as receiver:
        subscription = subscribe(service, receiver)
        first = publish_new_faq(store)
        service.deliver(subscription.id)
        [refused] = service.log(subscription.id)
        assert "CERTIFICATE_VERIFY_FAILED" in refused["error"] and receiver.received == []

        # Trusting that certificate (as a private CA would be trusted), the same send goes through:
        # TLS was negotiated for the name `localhost` over the connection to the checked address.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        service.replay_from(subscription.id)
        service.deliver(subscription.id)
        assert receiver.ids() == [f"msg_{first.seq}"] and receiver.rejected == []


def test_the_target_is_checked_again_at_send_time(store, receiver):
    subscription = subscribe(Webhooks(store, Settings(**FAST)), receiver)
    # The same subscription, seen by a worker whose allowlist no longer names loopback: as if
    # the host name now resolved to a private address (DNS rebinding).
    strict = Webhooks(store, Settings(**{**FAST, "allow": ()}))
    publish_new_faq(store)
    strict.deliver(subscription.id)
    [attempt] = strict.log(subscription.id)
    assert attempt["status"] is None and attempt["error"].startswith("refused: ")
    assert receiver.received == [] and receiver.rejected == []


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hook", "http://192.168.1.20/hook", "http://172.16.0.5/hook", "http://169.254.169.254/latest",
    "http://[::1]/hook", "http://[fe80::1]/hook", "http://0.0.0.0/hook", "http://localhost/hook",
    "http://[::ffff:10.0.0.1]/hook", "http://100.64.0.1/hook",
])
def test_private_loopback_and_link_local_targets_are_refused(empty_store, url):
    from api.services.webhooks import InvalidSubscription

    service = Webhooks(empty_store, Settings())
    with pytest.raises(InvalidSubscription) as refused:
        service.subscribe(url)
    assert "url" in refused.value.errors and "MEDKB_WEBHOOK_ALLOW" in refused.value.errors["url"][0]
    assert service.list() == []


@pytest.mark.parametrize("url, field", [
    ("ftp://example.org/hook", "url"), ("http://user:pw@127.0.0.1/hook", "url"), ("not a url", "url"),
    ("http://127.0.0.1:99999/hook", "url"), ("http:///hook", "url"), ("http://no-such-host.invalid/", "url"),
])
def test_malformed_targets_are_refused(empty_store, url, field):
    from api.services.webhooks import InvalidSubscription

    service = Webhooks(empty_store, Settings(**FAST))
    with pytest.raises(InvalidSubscription) as refused:
        service.subscribe(url)
    assert list(refused.value.errors) == [field]


def test_deliveries_to_many_subscriptions_run_concurrently_and_the_tick_does_not_wait(store, receiver):
    service = Webhooks(store, Settings(**{**FAST, "concurrency": 8}))
    names = [f"hook{n}" for n in range(8)]
    for name in names:
        subscribe(service, receiver, name)
    receiver.hold = threading.Event()
    publish_new_faq(store)
    assert service.tick() == 8
    # The tick has returned while every send is still held inside the receiver: it never waits for them.
    assert receiver.wait_for(lambda: receiver.in_flight == 8), "all eight sends are in flight at once"
    assert receiver.received == []
    receiver.hold.set()
    assert receiver.wait_for(lambda: len(receiver.received) == 8)
    service.close()
    assert sorted(name for name, _, _ in receiver.received) == names


def test_a_corrupt_subscription_file_stops_neither_the_scheduler_nor_the_others(backend, store, service, receiver,
                                                                                 caplog):
    if backend.url:
        pytest.skip("PostgreSQL keeps no subscription files to corrupt")
    broken, healthy = subscribe(service, receiver, "broken"), subscribe(service, receiver, "healthy")
    damaged = service.subscriptions.states / f"{broken.id}.json"
    damaged.write_bytes(b'{"cursor": ')
    change = publish_new_faq(store)
    deliver_all(service)
    assert receiver.ids("healthy") == [f"msg_{change.seq}"] and receiver.ids("broken") == []
    assert damaged.read_bytes() == b'{"cursor": ', "a corrupt file is never overwritten"
    assert str(damaged) in caplog.text
