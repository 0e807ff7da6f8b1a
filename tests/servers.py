"""Real `medkb serve` processes for tests: free loopback port, ready when /readyz says so, stopped
by signalling the whole process group (the server and its workers)."""
import contextlib
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
def running_server(db, *, workers=2, env=None, args=()):
    """Yield the base URL of `medkb serve` on `db`; stop it with SIGTERM and check it exited cleanly."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers), *args], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db), **(env or {})},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            os.killpg(process.pid, signal.SIGKILL)
            raise RuntimeError(f"medkb serve did not become ready: {process.communicate()[1].decode()[-2000:]}")
        time.sleep(0.1)
    try:
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert process.returncode == 0, f"medkb serve exited with {process.returncode}: {stderr.decode()[-2000:]}"
