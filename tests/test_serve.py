"""`medkb serve`: gunicorn workers as real processes, each seeing every publish within a second."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from api.store import Store
from conftest import ROOT


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture
def server(content_db):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "2"], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(content_db)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if get(f"{base}/readyz")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"medkb serve did not become ready: {process.stderr.read().decode()[-2000:]}")
    yield base
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)
    process.stderr.close()


def test_serve_answers_with_several_workers(server):
    status, headers, body = get(f"{server}/v1/products/hemgenix", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    status, headers, body = get(f"{server}/v1/nothing")
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    changes = {json.loads(get(f"{server}/readyz")[2])["change"] for _ in range(6)}
    assert changes == {15}, "every worker has loaded the same store"


def test_a_publish_reaches_every_worker_within_a_second(server, content_db):
    store = Store(content_db)
    head = store.head("faq", "hemgenix-how-does-it-work")
    store.write(dict(head.content, question="How does Hemgenix work? (updated)"), expected_revision=head.revision,
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
