"""GET /v1/bundle: the published set in one response, plus the feed cursor to follow from; built
into files every worker shares, in one streaming pass, never on a request's own thread."""
import contextlib
import fcntl
import gzip
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import tracemalloc

import brotli
import pytest
import requests

from api.app import create_app
from api.knowledge.documents import load_set, references
from api.services import bundle as bundle_service
from api.services.bundle import BundleFiles
from api.services.documents import Documents
from api.store.readmodel import ReadModel
from api.store.store import Store
from conftest import CONTENT, ROOT, import_documents
from servers import serving
from test_feed import published_set
from test_webhooks_serve import server  # noqa: F401 - the real `medkb serve` fixture

ENCODINGS = {"identity": None, "gzip": "gzip", "br": "br"}


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


def eventually(check, what, seconds=10):
    """check()'s first truthy answer, polled; fails naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (answer := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return answer


@pytest.fixture
def db(store):
    return store.root


@pytest.fixture
def client(db):
    return create_app({"MEDKB_DB": str(db), "MEDKB_CHECK_INTERVAL": 0}).test_client()


@pytest.fixture
def app_bundles():
    return lambda client: client.application.extensions["medkb.bundles"]


def bundle_folder(db):
    return db / bundle_service.FOLDER


def files_in(folder):
    return sorted(name for name in os.listdir(folder) if name != "build.lock")


@contextlib.contextmanager
def another_builder(db):
    """The bundle's build lock, held as another process building would hold it."""
    bundle_folder(db).mkdir(exist_ok=True)
    with open(bundle_folder(db) / "build.lock", "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def raw(session, url, encoding):
    """The bytes as sent (not decoded by requests) and the response."""
    response = session.get(url, headers={"Accept-Encoding": encoding}, stream=True)
    return response.raw.read(decode_content=False), response


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
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_two_stores_at_one_cursor_with_other_content_have_other_bundle_tags(tmp_path):
    """A store reset or restored from a backup can reach the cursor a client holds with other
    content: the client's If-None-Match must get the new bundle, not a 304."""
    tags, bodies = [], []
    for name, answer in (("first", "Take it with food."), ("second", "Never take it with food.")):
        store = Store(import_documents(tmp_path / name, load_set([CONTENT]).documents.values()))
        head = store.head("faq", "hemgenix-how-does-it-work")
        Documents(store).write(dict(head.content, answer=answer), expected_revision=head.revision, actor="ann",
                               publish=True)
        response = create_app({"MEDKB_DB": str(store.root), "MEDKB_CHECK_INTERVAL": 0}).test_client().get("/v1/bundle")
        tags.append(response.headers["ETag"])
        bodies.append(response.get_json())
        if name == "second":
            revalidated = create_app({"MEDKB_DB": str(store.root)}).test_client().get(
                "/v1/bundle", headers={"If-None-Match": tags[0]})
            assert revalidated.status_code == 200 and revalidated.get_json() == bodies[1]
    assert bodies[0]["cursor"] == bodies[1]["cursor"] and bodies[0] != bodies[1]
    assert tags[0] != tags[1]


def test_the_bundle_never_carries_a_draft_and_is_rebuilt_only_when_publication_changes(client, db, app_bundles):
    store = Store(db)
    first = client.get("/v1/bundle")
    built = app_bundles(client).current()
    inode = os.stat(built.path()).st_ino
    edit_faq(store, "A draft nobody may see.", publish=False)
    second = client.get("/v1/bundle")
    assert b"A draft nobody may see." not in second.data
    assert app_bundles(client).current() == built and os.stat(built.path()).st_ino == inode, \
        "a draft does not rebuild the bundle"
    assert second.headers["ETag"] == first.headers["ETag"]
    assert client.get("/v1/bundle", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304

    change = edit_faq(store, "A1, published.")
    third = client.get("/v1/bundle")
    assert third.headers["ETag"] != first.headers["ETag"] and third.get_json()["cursor"] == str(change.seq)
    assert bundle_set(third.get_json())[("faq", "drug-q1")]["answer"] == "A1, published."
    for path in built.paths():
        assert not path.exists(), f"{path.name}: the previous bundle's files are removed once the new one is complete"
    newest = app_bundles(client).current()
    assert files_in(bundle_folder(db)) == sorted(path.name for path in newest.paths())


def test_the_bundle_is_compressed_once_per_encoding(client, app_bundles):
    plain = client.get("/v1/bundle")
    packed = client.get("/v1/bundle", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and len(packed.data) < len(plain.data)
    assert gzip.decompress(packed.data) == plain.data
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"' and "Accept-Encoding" in packed.headers["Vary"]
    assert packed.headers["Cache-Control"].startswith("public")
    again = client.get("/v1/bundle", headers={"Accept-Encoding": "gzip"})
    bundle = app_bundles(client).current()
    assert again.data == packed.data == bundle.path("gzip").read_bytes(), "compressed once, with the bundle"
    assert client.get("/v1/bundle", headers={"Accept-Encoding": "gzip", "If-None-Match": packed.headers["ETag"]}
                      ).status_code == 304
    head = client.head("/v1/bundle", headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == packed.headers["ETag"]
    assert int(head.headers["Content-Length"]) == len(packed.data)
    best = client.get("/v1/bundle", headers={"Accept-Encoding": "br, gzip"})
    assert best.headers["Content-Encoding"] == "br" and brotli.decompress(best.data) == plain.data
    assert best.data == bundle.path("br").read_bytes()


def test_a_request_serves_the_previous_bundle_while_another_process_builds_the_new_one(client, db):
    first = client.get("/v1/bundle").get_json()
    with another_builder(db):
        change = edit_faq(Store(db), "A1, published while a build runs elsewhere.")
        meanwhile = client.get("/v1/bundle")
        assert meanwhile.status_code == 200 and meanwhile.get_json() == first, "the previous bundle, without waiting"
    # The lock is free: the build this worker started goes on, and a later request serves it.
    eventually(lambda: client.get("/v1/bundle").get_json()["cursor"] == str(change.seq), "the new bundle was built")


def test_with_no_bundle_yet_a_request_waits_a_bounded_time_then_answers_503(client, db, monkeypatch):
    monkeypatch.setattr(bundle_service, "FIRST_BUILD_WAIT_S", 0.2)
    with another_builder(db):
        refused = client.get("/v1/bundle")
        assert refused.status_code == 503 and refused.mimetype == "application/problem+json"
        assert refused.headers["Retry-After"] == str(bundle_service.RETRY_AFTER_S)
        assert "bundle" in refused.get_json()["detail"]
    body = eventually(lambda: (answer := client.get("/v1/bundle")).status_code == 200 and answer.get_json(),
                      "the bundle was built once the lock was free")
    assert bundle_set(body) == published_set(db)


def build_into(db, folder):
    model = ReadModel(Store(db), references)
    BundleFiles(model.file, folder).build()


def test_separate_processes_build_byte_identical_bundles(db, tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    build_into(db, ours)
    child = multiprocessing.get_context("spawn").Process(target=build_into, args=(db, theirs))
    child.start()
    child.join(120)
    assert child.exitcode == 0
    assert files_in(ours) == files_in(theirs) and len(files_in(ours)) == 3
    for name in files_in(ours):
        assert (ours / name).read_bytes() == (theirs / name).read_bytes(), name


@pytest.fixture
def large_db(tmp_path):
    """The shipped content padded with products cloned from BeneFIX: a published set of several MB."""
    documents = list(load_set([CONTENT]).documents.values())
    template = next(document for document in documents if document["id"] == "benefix")
    padding = [dict(template, id=f"bundle-product-{n:04d}", name=f"Bundle {n}", related=[]) for n in range(1000)]
    return import_documents(tmp_path / "large", [*documents, *padding])


def test_the_build_streams_the_published_set_rather_than_holding_the_body(large_db):
    model = ReadModel(Store(large_db), references)
    files = BundleFiles(model.file)
    tracemalloc.start()
    try:
        bundle = files.build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = bundle.path().stat().st_size
    assert size > 6_000_000, "a set large enough for the measure to mean something"
    assert peak < size / 4, f"the build held {peak} bytes at once for a body of {size}"
    body = json.loads(bundle.path().read_bytes())
    assert body["count"] == len(body["documents"]) == model.count()
    assert gzip.decompress(bundle.path("gzip").read_bytes()) == brotli.decompress(bundle.path("br").read_bytes()) \
        == bundle.path().read_bytes()


def test_serve_builds_the_bundle_before_its_workers_start_and_streams_a_large_one(large_db):
    folder = bundle_folder(large_db)
    assert not folder.exists()
    with serving(large_db, workers=1) as base:
        built = BundleFiles(ReadModel(Store(large_db), references).file).newest()
        assert built is not None, "built by `medkb serve` before the first request"
        inode = os.stat(built.path()).st_ino
        for name, encoding in ENCODINGS.items():
            data, response = raw(requests.Session(), f"{base}/v1/bundle", name)
            assert response.status_code == 200 and response.headers.get("Content-Encoding") == encoding
            assert int(response.headers["Content-Length"]) == len(data) and data == built.path(encoding).read_bytes()
    with serving(large_db, workers=1):
        assert os.stat(built.path()).st_ino == inode, "a restart keeps the bundle that is up to date"


STALLING_BUILDER = """
import contextlib, sys, time
from pathlib import Path
from api.knowledge.documents import references
from api.services.bundle import BundleFiles
from api.store.modelfile import ModelFile, default_path
from api.store.readmodel import published_snapshot
from api.store.store import Store

store, marker = Store(sys.argv[1]), Path(sys.argv[2])
model = ModelFile(default_path(store), references)
model.open(store)


@contextlib.contextmanager
def stalling(file):
    with published_snapshot(file) as (meta, count, documents):
        def some_then_stall(type_name):
            yield from documents(type_name)
            if type_name == "product":  # midway: the products are in, the rest is not
                marker.touch()
                time.sleep(600)
        yield meta, count, some_then_stall


BundleFiles(model).build(snapshot=stalling)
"""


def test_a_builder_killed_midway_leaves_no_half_bundle_and_the_next_request_builds_it(client, db, tmp_path):
    before = client.get("/v1/bundle").get_json()
    change = edit_faq(Store(db), "A1, published before the builder died.")
    marker = tmp_path / "stalled"
    builder = subprocess.Popen([sys.executable, "-c", STALLING_BUILDER, str(db), str(marker)], cwd=ROOT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.PIPE)
    try:
        eventually(lambda: marker.exists() or builder.poll() is not None, "the builder reached midway", 60)
        assert builder.poll() is None, builder.stderr.read().decode()
        assert any(name.endswith(".tmp") for name in files_in(bundle_folder(db))), "it was writing"
    finally:
        builder.send_signal(signal.SIGKILL)
        builder.wait(30)
        builder.stderr.close()
    names = files_in(bundle_folder(db))
    assert not any(name.startswith(f"{change.seq}-") for name in names), f"no bundle of a dead build: {names}"

    after = client.get("/v1/bundle")
    assert after.status_code == 200
    body = after.get_json()
    assert body["cursor"] == str(change.seq) != before["cursor"], "the next request built it"
    assert bundle_set(body) == published_set(db)
    assert not any(name.endswith(".tmp") for name in files_in(bundle_folder(db))), "the dead builder's files are gone"


def test_a_served_bundle_in_each_encoding_with_its_tags_and_a_publish_reaching_it(server, content_db):  # noqa: F811
    session = requests.Session()
    bodies = {}
    for name, encoding in ENCODINGS.items():
        data, response = raw(session, f"{server}/v1/bundle", name)
        assert response.status_code == 200 and response.headers.get("Content-Encoding") == encoding
        assert int(response.headers["Content-Length"]) == len(data)
        assert "Accept-Encoding" in response.headers["Vary"]
        bodies[name] = data
        tag = response.headers["ETag"]
        assert tag.endswith(f'-{encoding}"' if encoding else '"') and tag.startswith('"bundle-')
        assert session.get(f"{server}/v1/bundle", headers={"Accept-Encoding": name, "If-None-Match": tag}
                           ).status_code == 304
    assert gzip.decompress(bodies["gzip"]) == brotli.decompress(bodies["br"]) == bodies["identity"]
    assert bundle_set(json.loads(bodies["identity"])) == published_set(content_db)

    # Whichever worker answers, the same bytes and tag (fresh connections: not always the same worker).
    answers = set()
    for _ in range(8):
        response = requests.get(f"{server}/v1/bundle", headers={"Connection": "close"})
        answers.add((response.headers["ETag"], response.content))
    assert len(answers) == 1

    store = Store(content_db)
    head = store.head("faq", "hemgenix-how-does-it-work")
    change = Documents(store).write(dict(head.content, question="How does Hemgenix work, in short?"),
                                    expected_revision=head.revision, actor="ann", publish=True)
    body = eventually(lambda: (body := requests.get(f"{server}/v1/bundle").json())["cursor"] == str(change.seq)
                      and body, "the publish reached the bundle")
    assert bundle_set(body)[("faq", "hemgenix-how-does-it-work")]["question"] == "How does Hemgenix work, in short?"
    assert bundle_set(body) == published_set(content_db)


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
