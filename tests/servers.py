"""medkb as real processes, for tests that go through what a user runs: the CLI, `medkb keys
create`, and `medkb serve` on a free loopback port, ready when /readyz says so and stopped by
signalling its whole process group (the server and its workers)."""
import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests

from conftest import ROOT


def environment(db, env=None):
    return {**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(db), **(env or {})}


def medkb(db, *args, cwd=ROOT):
    """`medkb ARGS` on the store at `db`, as a subprocess; its CompletedProcess, text."""
    return subprocess.run([sys.executable, "-m", "api.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env=environment(db), timeout=300)


def create_key(db, role, name):
    """A real API key, made the way an operator makes one: `medkb keys create`."""
    done = subprocess.run([sys.executable, "-m", "api.cli", "keys", "create", "--role", role, "--name", name],
                          cwd=ROOT, env=environment(db), capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(db, *, workers=2, env=None, args=(), check_exit=False):
    """Yield the base URL of `medkb serve` on `db`; stop it with SIGTERM. With `check_exit`, also
    check that it exited cleanly."""
    port = free_port()
    # Standard error to a file, not a pipe: a server that logs much would block on a full pipe.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", str(workers), *args], cwd=ROOT,
        env=environment(db, env), stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def logged():
        log.seek(0)
        return log.read().decode(errors="replace")[-2000:]

    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            message = logged()
            log.close()
            raise RuntimeError(f"medkb serve did not become ready: {message}")
        time.sleep(0.1)
    try:
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        finally:
            last_words = logged()
            log.close()
    if check_exit:
        assert process.returncode == 0, f"medkb serve exited with {process.returncode}: {last_words}"


def fingerprint(root):
    """sha256 of every file under `root` (path and bytes): equal fingerprints, identical store.
    The index and read model files are left out: derived data, which readers touch (SQLite's
    shared memory)."""
    digest = hashlib.sha256()
    derived = ("indexes.sqlite", "readmodel.sqlite")
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(derived)):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
