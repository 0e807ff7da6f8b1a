"""A real `medkb serve` on loopback, with keys made by the real `medkb keys create`, for console tests."""
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import requests

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(db):
    return {**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)}


def create_key(db, role, name):
    done = subprocess.run([sys.executable, "-m", "api.cli", "keys", "create", "--role", role, "--name", name],
                          cwd=ROOT, env=environment(db), capture_output=True, text=True, check=True)
    return done.stdout.strip()


@contextmanager
def serving(db, workers=2):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)], cwd=ROOT,
        env=environment(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"medkb serve did not become ready: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        process.stderr.close()
