"""Read model benchmark: start-up to ready and memory per worker as the published set grows.

    python bench/readmodel.py [--sizes 100,10000,100000] [--workers 2] [--keep DIR]

For each size, builds a store of the shipped content padded with products to that many published
documents (durable=False, as bench/delivery.py does), then starts `medkb serve` three times:

- first start: the read model file is missing, so `medkb serve` builds it before its workers start;
- restart: the workers open the file they left; this is the ready time issue 12 asks under 5 s;
- restart after a publish made while the server was down: the model applies just that change.

Each start is timed from spawning `medkb serve` to the first 200 from /readyz. Memory is the
resident set (VmRSS) of each worker after start, and after reading list pages (the first and the
last), single documents and the feed. Also reported: the model file's size, and in-process timings
of opening the Store and the ReadModel on their own, and of a preview and a reader showing a
write made by another process. Everything is a ratio against the smallest
size, measured in the same run. Only loopback is used.
"""
import argparse
import contextlib
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.knowledge.documents import load_set, references  # noqa: E402
from bench import server  # noqa: E402
from api.services.documents import Documents  # noqa: E402
from api.store.draftmodel import DraftModel  # noqa: E402
from api.store.modelfile import FILE_NAME  # noqa: E402
from api.store.readmodel import ReadModel  # noqa: E402
from api.store.store import Store  # noqa: E402


def build_store(root, total):
    documents = list(load_set([ROOT / "content"]).documents.values())
    template = next(d for d in documents if d["id"] == "benefix")
    padding = [dict(template, id=f"bench-product-{n:06d}", name=f"Bench {n}", related=[])
               for n in range(total - len(documents))]
    store = Store(root, durable=False)
    batch = 5000
    for start in range(0, len(padding) or 1, batch):
        Documents(store).import_((documents if start == 0 else []) + padding[start:start + batch], actor="bench")
    return store


def children(pid):
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            if parent == pid:
                found.append(int(entry.name))
    return found


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def workers_of(server_pid, expected):
    """The granian worker processes: the serve process's largest children (a spawn start also
    leaves a small resource tracker among them)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pids = children(server_pid)
        if len(pids) >= expected:
            return sorted(pids, key=rss_mb, reverse=True)[:expected]
        time.sleep(0.1)
    return children(server_pid)


class Server(server.Server):
    def __init__(self, db, workers):
        super().__init__(db, workers)
        self.workers = workers_of(self.process.pid, workers)

    def rss(self):
        return [rss_mb(pid) for pid in self.workers]


def exercise(server, total):
    """List pages (first and last), single reads and a feed page, over fresh connections so that
    every worker gets some: what a worker holds after serving traffic."""
    last_page = (total // 20) + 1
    timings = {"list page 1": [], "list last page": [], "read": []}
    for _ in range(10):
        for name, path in (("list page 1", "/v1/products?page=1&page_size=20"),
                           ("list last page", f"/v1/products?page={last_page}&page_size=20"),
                           ("read", "/v1/products/hemgenix")):
            started = time.perf_counter()
            response = requests.get(server.base + path, timeout=60)
            timings[name].append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (path, response.status_code)
        requests.get(f"{server.base}/v1/feed?limit=100", timeout=60).raise_for_status()
    return {name: statistics.median(values) for name, values in timings.items()}


def publish_one(db):
    store = Store(db)
    head = store.head("faq", "hemgenix-how-does-it-work")
    Documents(store).write(dict(head.content, question=f"{head.content['question']} ({time.time()})"),
                           expected_revision=head.revision, actor="bench", publish=True)


def in_process(db):
    """Opening the Store and the ReadModel on their own, and how long a preview and a reader take
    to show a write made by another process (each applies just that change)."""
    from api.app import create_app

    timings = {}
    started = time.perf_counter()
    store = Store(db)
    timings["open Store in-process (ms)"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    Store(db)  # again, with the files now in the page cache, as the app factory will find them
    warm_store = time.perf_counter() - started
    started = time.perf_counter()
    create_app({"MEDKB_DB": str(db)})
    # What a worker does at start-up besides opening the store.
    timings["create_app in-process, less the Store's opening (ms)"] = (time.perf_counter() - started - warm_store) * 1000
    started = time.perf_counter()
    model = ReadModel(store, references)
    timings["open ReadModel in-process (ms)"] = (time.perf_counter() - started) * 1000
    preview = DraftModel(store, references)
    writer = Documents(Store(db))  # another Store object: the models cannot tell its commits are theirs
    head = store.head("faq", "hemgenix-how-does-it-work")
    draft = writer.write(dict(head.content, answer=f"Draft {time.time()}"), expected_revision=head.revision,
                         actor="bench")
    started = time.perf_counter()
    preview.refresh()
    assert preview.get("faq", "hemgenix-how-does-it-work").revision == draft.revision
    timings["preview after a write (ms)"] = (time.perf_counter() - started) * 1000
    writer.set_pointers("faq", "hemgenix-how-does-it-work", expected_revision=draft.revision,
                        changes={"published": draft.revision}, kind="publish", actor="bench")
    started = time.perf_counter()
    model.refresh(force=True)
    assert model.get("faq", "hemgenix-how-does-it-work").revision == draft.revision
    timings["reader after a publish (ms)"] = (time.perf_counter() - started) * 1000
    model.file.close()
    preview.file.close()
    return timings


def measure(total, workers, folder):
    db = folder / f"store-{total}"
    started = time.perf_counter()
    if (db / "head.json").exists():  # kept from an earlier run (--keep): measure its model afresh
        store, built_s = Store(db), float("nan")
        for path in db.glob(FILE_NAME + "*"):
            path.unlink()
    else:
        store = build_store(db, total)
        built_s = time.perf_counter() - started
    count = sum(1 for state in store.states() if state.published)
    first = Server(db, workers)
    first.stop()
    restart = Server(db, workers)
    rss_start = restart.rss()
    latency = exercise(restart, count)
    rss_after = restart.rss()
    restart.stop()
    publish_one(db)
    after_publish = Server(db, workers)
    after_publish.stop()
    with contextlib.closing(sqlite3.connect(db / FILE_NAME)) as model:
        builds = dict(model.execute("SELECT key, value FROM meta"))["builds"]
    timings = in_process(db)
    size_mb = sum(p.stat().st_size for p in db.glob(FILE_NAME + "*")) / 1e6
    return {"published documents": count, "store built (s)": built_s, "first start, model built (s)": first.ready_s,
            "restart to ready (s)": restart.ready_s, "restart after a publish (s)": after_publish.ready_s,
            "worker RSS after start (MB, max)": max(rss_start), "worker RSS after reads (MB, max)": max(rss_after),
            "model file (MB)": size_mb, "model builds": builds, **timings,
            **{f"{name} p50 (ms)": value for name, value in latency.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="build the stores here and keep them; reuse those found there")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    folder = args.keep or Path(tempfile.mkdtemp(prefix="medkb-bench-readmodel-"))
    results = {}
    for total in sizes:
        results[total] = measure(total, args.workers, folder)
        print(f"{total}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in results[total].items()), file=sys.stderr, flush=True)
    base = results[sizes[0]]
    names = list(base)
    width = max(map(len, names))
    print(f"{'':{width}}  " + "  ".join(f"{size:>12}" for size in sizes) + "  " +
          "  ".join(f"{f'x{size}/{sizes[0]}':>14}" for size in sizes[1:]))
    for name in names:
        values = [results[size][name] for size in sizes]
        cells = "  ".join(f"{value:>12.3g}" if isinstance(value, float) else f"{value:>12}" for value in values)
        ratios = "  ".join(f"{(value / base[name] if base[name] else float('nan')):>14.2f}" for value in values[1:])
        print(f"{name:{width}}  {cells}  {ratios}")
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
