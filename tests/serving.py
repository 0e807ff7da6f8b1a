"""Helpers for tests that run medkb as real processes: the CLI, and `medkb serve` on a free
loopback port (started as in test_serve.py, stopped by its process group id)."""
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

import requests

from conftest import ROOT


def medkb(db, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "api.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)}, timeout=300)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(db, workers=2):
    """`medkb serve` on `db`; yields the base URL once /readyz answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers)], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
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
