"""`medkb serve`: granian workers as real processes, each seeing every publish within a second."""
# Headers stay http.client messages, which compare names case-insensitively as RFC 9110 says:
# granian (hyper) sends them in lower case, as HTTP/2 requires.
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from api.services.documents import Documents
from api.store.store import Store
from conftest import CONTENT_COUNT, ROOT
from servers import free_port, serving
from test_production import sample


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture
def server(content_db):
    with serving(content_db) as base:
        yield base


def test_serve_answers_with_several_workers(server):
    status, headers, body = get(f"{server}/v1/products/hemgenix", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    status, headers, body = get(f"{server}/v1/nothing")
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    changes = {json.loads(get(f"{server}/readyz")[2])["change"] for _ in range(6)}
    assert changes == {CONTENT_COUNT}, "every worker has loaded the same store"


def test_a_publish_reaches_every_worker_within_a_second(server, content_db):
    store = Store(content_db)
    head = store.head("faq", "hemgenix-how-does-it-work")
    Documents(store).write(dict(head.content, question="How does Hemgenix work? (updated)"), expected_revision=head.revision,
                actor="test", publish=True)
    published_at = time.monotonic()
    seen = 0
    # Many requests spread over both workers; every one must show the new revision within 1 s.
    while time.monotonic() - published_at < 1.0:
        time.sleep(0.05)
    for _ in range(20):
        body = json.loads(get(f"{server}/v1/faqs/hemgenix-how-does-it-work")[2])
        assert body["question"].endswith("(updated)") and body["revision"] == 2
        seen += 1
    assert seen == 20


def send(url, method, body, headers):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read() or b"{}")


def race(count, call):
    """Run `call(i)` from `count` threads released at the same moment; the server's workers are processes."""
    import threading

    barrier, results = threading.Barrier(count), [None] * count

    def run(i):
        barrier.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture
def secrets(content_db):
    from api.store.keys import KeyStore

    store = KeyStore(content_db)
    return {name: store.create(role, name)[1] for name, role in
            [("ann", "author"), ("abe", "author"), ("rita", "reviewer"), ("rob", "reviewer"), ("paul", "publisher"),
             ("ada", "admin")]}


def bearer(secrets, who, etag=None):
    return {"Authorization": f"Bearer {secrets[who]}", **({"If-Match": etag} if etag else {})}


FAQ = "/v1/editorial/documents/faq/hemgenix-what-is-the-padua-variant"


def test_racing_editors_with_one_etag_exactly_one_wins(server, secrets, content_db):
    status, headers, _ = get(f"{server}{FAQ}", bearer(secrets, "ann"))
    etag = headers["ETag"]
    results = race(8, lambda i: send(f"{server}{FAQ}", "PATCH", {"question": f"Edit number {i}?"},
                                     bearer(secrets, "ann" if i % 2 else "abe", etag)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [412] * 7, statuses
    winner = next(body for status, _, body in results if status == 200)
    assert [r.revision for r in Store(content_db).revisions("faq", "hemgenix-what-is-the-padua-variant")] == [1, 2]
    assert Store(content_db).head("faq", "hemgenix-what-is-the-padua-variant").content["question"] == \
        winner["document"]["question"]


def test_racing_transitions_on_one_document_exactly_one_wins(server, secrets):
    _, headers, _ = get(f"{server}{FAQ}", bearer(secrets, "ann"))
    status, headers, _ = send(f"{server}{FAQ}", "PATCH", {"question": "What is the Padua variant of factor IX?"},
                              bearer(secrets, "ann", headers["ETag"]))
    etag = headers["ETag"]
    assert send(f"{server}{FAQ}/transitions", "POST", {"action": "submit"}, bearer(secrets, "ann", etag))[0] == 200
    results = race(8, lambda i: send(f"{server}{FAQ}/transitions", "POST",
                                     {"action": "approve"} if i % 2 else {"action": "request_changes", "comment": "No."},
                                     bearer(secrets, "rita" if i % 2 else "rob", etag)))
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] + [409] * 7, statuses
    _, _, audit = get(f"{server}/v1/editorial/audit?document=faq/hemgenix-what-is-the-padua-variant",
                      bearer(secrets, "rita"))
    assert len([e for e in json.loads(audit) if e["action"] in ("approve", "request_changes")]) == 1


def test_serve_publishes_on_schedule_with_no_request(server, secrets):
    import datetime

    _, headers, _ = get(f"{server}{FAQ}", bearer(secrets, "ann"))
    _, headers, _ = send(f"{server}{FAQ}", "PATCH", {"question": "What is the Padua variant, in short?"},
                         bearer(secrets, "ann", headers["ETag"]))
    etag = headers["ETag"]
    send(f"{server}{FAQ}/transitions", "POST", {"action": "submit"}, bearer(secrets, "ann", etag))
    send(f"{server}{FAQ}/transitions", "POST", {"action": "approve"}, bearer(secrets, "rita", etag))
    when = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)).isoformat()
    status, _, body = send(f"{server}{FAQ}/transitions", "POST", {"action": "publish", "publish_at": when},
                           bearer(secrets, "paul", etag))
    assert status == 200 and body["workflow"]["state"] == "approved"
    time.sleep(3)  # no request in between: the server's own scheduler must act
    delivered = json.loads(get(f"{server}/v1/faqs/hemgenix-what-is-the-padua-variant")[2])
    assert delivered["question"] == "What is the Padua variant, in short?" and delivered["revision"] == 2
    # Counted by the serving process itself, where the scheduler runs, and added to the workers' counts.
    status, _, scraped = get(f"{server}/metrics", bearer(secrets, "ada"))
    assert status == 200 and sample(scraped.decode(), "medkb_scheduled_publishes_total", type="faq") == 1


def refused_before_serving(tmp_path, args, env=None):
    """`medkb serve ARGS` expected to refuse at once; on its own port and session, so that a
    regression that does serve is stopped, workers and all, rather than left behind."""
    process = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--port", str(free_port()), *args], cwd=ROOT,
                               env={**os.environ, "MEDKB_DB": str(tmp_path / "db"), **(env or {})},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"serve {args} started instead of refusing")
    return process.returncode, stderr


@pytest.mark.parametrize("option", ["--header-timeout", "--body-timeout"])
def test_a_timeout_that_is_not_a_number_is_refused_before_serving(tmp_path, option):
    returncode, stderr = refused_before_serving(tmp_path, [option, "nan"])
    assert returncode == 2 and "'nan' is not a number of seconds" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "db").exists()


def test_a_rate_limit_storage_that_cannot_be_used_is_one_line_before_serving(tmp_path):
    returncode, stderr = refused_before_serving(tmp_path, [], {"MEDKB_RATE_LIMIT_STORAGE": "nonsense://x"})
    assert returncode == 1 and "Traceback" not in stderr
    assert stderr.strip() == "MEDKB_RATE_LIMIT_STORAGE: 'nonsense://x' cannot be used (unknown storage scheme : nonsense://x)"


def test_serve_keeps_its_run_folder_in_shared_memory_and_clears_those_of_killed_runs(content_db):
    """Metric files and rate-limit counters live in a run folder apart from every disk; a run
    killed with SIGKILL cannot remove its own, so the next start removes it (in shared memory it
    would hold memory until the machine restarts)."""
    shared = Path("/dev/shm")
    if not os.access(shared, os.W_OK):
        pytest.skip("no /dev/shm here")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    killed_run = shared / f"medkb-serve-{gone.pid}-earlier"
    (killed_run / "metrics").mkdir(parents=True)
    live_run = shared / f"medkb-serve-{os.getpid()}-alive"  # this test's own process: still running
    live_run.mkdir()
    try:
        with serving(content_db, workers=1) as base:
            assert urllib.request.urlopen(f"{base}/healthz").status == 200
            ours = [folder for folder in shared.glob("medkb-serve-*-*")
                    if (folder / "metrics").is_dir() and any((folder / "metrics").glob("*.db"))]
            assert ours, "the run's metric files are in shared memory"
            assert not killed_run.exists()
            assert live_run.exists()
    finally:
        shutil.rmtree(killed_run, ignore_errors=True)
        live_run.rmdir()
