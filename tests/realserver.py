"""Helpers for tests through a real `medkb serve` (gunicorn workers on a free loopback port) and
for checking that refused requests leave the store's files exactly as they were."""
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from conftest import ROOT


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(db, workers=1):
    """`python -m api.cli serve` on the store at `db`; yields its base URL, stops it by PID."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"medkb serve did not become ready: {process.stderr.read().decode()[-2000:]}")
                time.sleep(0.1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stderr.close()


def fingerprint(root):
    """sha256 of every file under `root` (path and bytes): equal fingerprints, identical store."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
