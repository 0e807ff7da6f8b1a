"""`medkb serve` as benchmarks start it: timed from spawn to the first 200 from /readyz."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery import free_port  # noqa: E402


class Server:
    """A running `medkb serve` on `db` (its own process group); `ready_s` is how long it took to
    answer /readyz. Raises SystemExit, with the end of its log, when it is not ready in time."""

    def __init__(self, db, workers, env=None, ready_within=1800):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on it
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port), "--workers", str(workers)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db), **(env or {})},
            stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        self.pid = self.process.pid
        deadline = time.monotonic() + ready_within
        while True:
            try:
                if requests.get(f"{self.base}/readyz", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.log.seek(0)
                raise SystemExit(f"medkb serve did not become ready: {self.log.read().decode()[-2000:]}")
            time.sleep(0.02)
        self.ready_s = time.perf_counter() - started

    def stop(self):
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=60)
