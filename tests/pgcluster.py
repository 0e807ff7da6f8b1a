"""A throwaway PostgreSQL server from the machine's binaries (initdb, pg_ctl), as pytest-postgresql
starts one: a new cluster in a temporary folder, on a free loopback port, with its unix socket in
that folder, trusting local connections, removed when stopped. The tests and bench/backends.py use it.

initdb refuses to run as root, so as root the cluster runs as the `postgres` user (the folder is
handed to it). When no binaries are found and we are root, Debian's `postgresql` is installed,
as `make test` does.
"""
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

SERVER_USER = "postgres"
DATABASE_USER = "medkb"


def _binaries():
    found = shutil.which("pg_ctl") and shutil.which("initdb")
    if found:
        return Path(shutil.which("pg_ctl")).parent, Path(shutil.which("initdb")).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if versions:
        folder = Path(versions[-1]).parent
        return folder, folder
    return None


def find_binaries():
    """(folder of pg_ctl, folder of initdb); installs Debian's postgresql if there are none."""
    found = _binaries()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = _binaries()
    if found is None:
        raise RuntimeError("PostgreSQL's initdb and pg_ctl were not found: install Debian's `postgresql` package "
                           "(`make test` does) or put them on the PATH")
    return found


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Cluster:
    def __init__(self, durable=False):
        """durable=False turns fsync off: the tests kill clients, never the server, so what the
        server's own crash safety costs is not theirs to pay. Benchmarks keep it on."""
        self.durable = durable
        self.folder = Path(tempfile.mkdtemp(prefix="medkb-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        self._as_server_user = os.geteuid() == 0

    def _run(self, *command):
        if self._as_server_user:
            command = ("runuser", "-u", SERVER_USER, "--", *command)
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)

    def start(self):
        pg_ctl, initdb = find_binaries()
        if self._as_server_user:
            shutil.chown(self.folder, SERVER_USER)
        self._run(str(initdb / "initdb"), "-D", str(self.data), "-A", "trust", "-U", DATABASE_USER, "-E", "UTF8",
                  "--locale=C", "--no-sync")
        return self.restart()

    def restart(self, *settings):
        """Start the server on its data (again, after crash()), with extra `-c name=value` settings."""
        pg_ctl, _ = find_binaries()
        options = " ".join([f"-k {self.folder} -h 127.0.0.1 -p {self.port} -c max_connections=200",
                            *([] if self.durable else ["-c fsync=off -c full_page_writes=off"]),
                            *(f"-c {setting}" for setting in settings)])
        try:
            self._run(str(pg_ctl / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "server.log"),
                      "-w", "-t", "60", "start")
        except subprocess.CalledProcessError as error:
            log = (self.folder / "server.log").read_text(errors="replace") if (self.folder / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {error.stderr}\n{log[-2000:]}") from None
        return self

    def crash(self):
        """Stop the server at once, as a crash or a failover does: every session ends, no checkpoint."""
        pg_ctl, _ = find_binaries()
        self._run(str(pg_ctl / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def stop(self):
        pg_ctl, _ = find_binaries()
        try:
            self._run(str(pg_ctl / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database="postgres"):
        return f"postgresql://{DATABASE_USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, template=None):
        """A new database; a copy of `template` when given (a migrated, empty one is quickest)."""
        name = f"medkb_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            clause = f" TEMPLATE {template}" if template else ""
            connection.execute(f"CREATE DATABASE {name}{clause}")
        return name
