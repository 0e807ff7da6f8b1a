"""Scale benchmark: what grows with the number of documents, as ratios against 100 documents.

    python bench/scale.py [--sizes 100 10000 100000] [--million] [--workers 2] [--keep DIR]
                          [--padding copies|products]

For each size, in one run: writes a valid content set of that many documents (the shipped
content, padded with suffixed copies of the whole shipped knowledge base; with --padding products,
with copies of the shipped BeneFIX product, the heaviest document to check), then measures

  import            `medkb import` of the set into a new store (durable, as in production), read
                    model and search index included; above 100,000 documents, in runs of 100,000
  ready             `medkb serve` start to the first 200 from /readyz
  rss start/warm    resident memory of each worker after start, and after searches and previews
  idle cpu          CPU used by the server (all processes) over 10 s with no request at all
  read/search/write p50 of GET /v1/products/hemgenix, GET /v1/search?q=liver, and a PATCH of an FAQ
  publish→visible   an FAQ edited, submitted, approved and published through the editorial API,
                    until the public read shows it (polled every 5 ms): median and maximum of 15

and prints a table, each figure also as a ratio against the 100-document run (the baseline is
measured in the same run, on the same machine). Only loopback is used; every wait is bounded.
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
import requests  # noqa: E402  (after the path: the bench runs from a checkout)

from bench.delivery import cpu_seconds, group_members  # noqa: E402
from bench.server import Server  # noqa: E402

FAQ = "hemgenix-how-does-it-work"
IDLE_SECONDS = 10
# publish→visible is bimodal at every size: at once when the worker that published answers the
# read, up to CHECK_INTERVAL (100 ms) later when the other one does; a median of 3 gave 13 and 77 ms
# in two runs of one code. So: 15 publishes, their median and their maximum.
PUBLISHES = 15
# Documents per `medkb import` run. One run holds its whole set in memory (about 40 KB per
# document) so as to check it whole before writing; beyond this, the set is imported in parts,
# each referring to the first.
IMPORT_PART = 100_000


def medkb(*args, env, check=True):
    result = subprocess.run([sys.executable, "-m", "api.cli", *map(str, args)], cwd=ROOT, env={**os.environ, **env},
                            capture_output=True, text=True, timeout=4 * 3600)
    if check and result.returncode != 0:
        raise SystemExit(f"medkb {' '.join(map(str, args))} failed:\n{result.stdout}{result.stderr}")
    return result


def environment(db):
    """What every medkb command and server of a run at `db` gets: no rate limits to skew the figures."""
    return {"MEDKB_DB": str(db), "PYTHONPATH": str(ROOT), "MEDKB_RATE_LIMIT_PUBLIC": "off",
            "MEDKB_RATE_LIMIT_EDITORIAL": "off"}


def write_content(folder, total, part_size=None, padding="copies"):
    """The shipped content and padding up to `total` documents, as files, in parts of about
    `part_size` documents (folder/part-000, ...; one part by default). Returns the parts.

    Padding "copies" repeats the whole shipped knowledge base (products, FAQs, mechanism, article,
    sources, people, conditions in the shipped proportions) with every id suffixed, each copy
    referring only to itself, and tops up with copies of single sources; a part always holds
    whole copies, so each imports on its own. Padding "products" is every extra document a copy
    of the shipped BeneFIX product, the heaviest kind to check: the worst case.
    """
    from api.knowledge.documents import canonical_bytes, content_path, load_set

    part_size = part_size or total
    documents = list(load_set([ROOT / "content"]).documents.values())
    groups = _padding_groups(documents, total - len(documents), padding)
    parts, written = [], 0
    for group in [documents, *groups]:
        if not parts or (part_size < total and written >= len(parts) * part_size):
            parts.append(folder / f"part-{len(parts):03d}" if part_size < total else folder)
        for document in group:
            path = content_path(parts[-1], document)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(canonical_bytes(document))
        written += len(group)
    return parts


def _padding_groups(documents, count, padding):
    """`count` padding documents, in groups that must be imported together."""
    if padding == "products":
        template = next(d for d in documents if d["id"] == "benefix")
        for n in range(count):
            yield [dict(template, id=f"scale-product-{n:07d}", name=f"Scale {n}", related=[])]
        return
    # Every string equal to a shipped id is a reference to it (ids are slugs, which no prose is).
    ids = sorted({document["id"] for document in documents}, key=len, reverse=True)
    an_id = re.compile('"(' + "|".join(map(re.escape, ids)) + ')"')
    text = orjson.dumps(documents).decode()
    copy = 0
    while count > 0:
        suffixed = orjson.loads(an_id.sub(lambda match: f'"{match.group(1)}-copy{copy:06d}"', text))
        # The last, partial copy: sources only, which refer to nothing.
        group = suffixed if count >= len(suffixed) else [d for d in suffixed if d["type"] == "source"][:count]
        yield group
        count -= len(group)
        copy += 1


def group_processes(group):
    """(pid, RSS in MB) of every process of process group `group`."""
    found = []
    for pid, _ in group_members(group):
        try:
            with open(f"/proc/{pid}/status") as status:
                rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
        found.append((pid, rss / 1024))
    return found


def worker_rss(server):
    """RSS of each worker: every process of the server's group but the master."""
    return sorted(rss for pid, rss in group_processes(server.pid) if pid != server.pid)


def p50(call, count):
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def ok(response):
    if response.status_code >= 300:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:300]}")
    return response


def measure(size, scratch, workers, padding):
    content, db = scratch / f"content-{size}", scratch / f"db-{size}"
    env = environment(db)
    started = time.perf_counter()
    parts = write_content(content, size, IMPORT_PART, padding)
    print(f"[{size}] content written in {time.perf_counter() - started:.1f} s", flush=True)
    figures = {"import (s)": 0.0}
    for part in parts:
        started = time.perf_counter()
        medkb("import", part, env=env)
        figures["import (s)"] += time.perf_counter() - started
        print(f"[{size}] imported {part.name} in {time.perf_counter() - started:.1f} s", flush=True)
    admin = medkb("keys", "create", "--role", "admin", "--name", "ada", env=env).stdout.strip()
    reviewer = medkb("keys", "create", "--role", "reviewer", "--name", "rita", env=env).stdout.strip()
    server = Server(db, workers, env=env, ready_within=600)
    base = server.base
    try:
        figures["ready (s)"] = server.ready_s
        time.sleep(1)  # let every worker finish starting
        figures["rss per worker, start (MB)"] = max(worker_rss(server))
        editor = {"Authorization": f"Bearer {admin}"}
        for _ in range(4 * workers):  # fresh connections, so every worker serves some
            ok(requests.get(f"{base}/v1/search", params={"q": "liver"}, timeout=600, headers={"Connection": "close"}))
            ok(requests.get(f"{base}/v1/preview/products/hemgenix", timeout=600,
                            headers={**editor, "Connection": "close"}))
        figures["rss per worker, warm (MB)"] = max(worker_rss(server))
        cpu_before = cpu_seconds(server.pid)
        time.sleep(IDLE_SECONDS)
        figures["idle cpu (%)"] = (cpu_seconds(server.pid) - cpu_before) / IDLE_SECONDS * 100
        session = requests.Session()
        figures["read p50 (ms)"] = p50(lambda: ok(session.get(f"{base}/v1/products/hemgenix", timeout=60)), 200)
        figures["search p50 (ms)"] = p50(lambda: ok(session.get(f"{base}/v1/search", params={"q": "liver"},
                                                                timeout=600)), 50)
        document = f"{base}/v1/editorial/documents/faq/{FAQ}"
        etag = ok(session.get(document, headers=editor)).headers["ETag"]
        edits = iter(range(10**6))

        def write():
            nonlocal etag
            response = ok(session.patch(document, json={"question": f"How does Hemgenix work? ({next(edits)})"},
                                        headers={**editor, "If-Match": etag,
                                                 "Content-Type": "application/merge-patch+json"}, timeout=60))
            etag = response.headers["ETag"]

        figures["write p50 (ms)"] = p50(write, 30)
        visible = []
        for _ in range(PUBLISHES):
            question = f"How does Hemgenix work? ({next(edits)})"
            etag = ok(session.patch(document, json={"question": question},
                                    headers={**editor, "If-Match": etag,
                                             "Content-Type": "application/merge-patch+json"})).headers["ETag"]
            for action, key in (("submit", admin), ("approve", reviewer)):
                etag = ok(session.post(f"{document}/transitions", json={"action": action},
                                       headers={"Authorization": f"Bearer {key}", "If-Match": etag})).headers["ETag"]
            started = time.perf_counter()
            etag = ok(session.post(f"{document}/transitions", json={"action": "publish"},
                                   headers={**editor, "If-Match": etag})).headers["ETag"]
            deadline = time.monotonic() + 30
            reader = requests.Session()
            while reader.get(f"{base}/v1/faqs/{FAQ}", timeout=30).json().get("question") != question:
                if time.monotonic() > deadline:
                    raise SystemExit(f"[{size}] a publish did not become visible in 30 s")
                time.sleep(0.005)
            visible.append(time.perf_counter() - started)
        figures["publish→visible p50 (ms)"] = statistics.median(visible) * 1000
        figures["publish→visible max (ms)"] = max(visible) * 1000
    finally:
        server.stop()
    print(f"[{size}] " + ", ".join(f"{name} {value:.2f}" for name, value in figures.items()), flush=True)
    return figures


def report(results):
    sizes = list(results)
    names = list(results[sizes[0]])
    baseline = results[sizes[0]]
    header = f"{'':28}" + "".join(f"{size:>12,}" for size in sizes) + "".join(f"{f'x {size:,}':>12}" for size in sizes[1:])
    print("\n" + header)
    for name in names:
        values = "".join(f"{results[size][name]:>12.2f}" for size in sizes)
        ratios = "".join(f"{results[size][name] / baseline[name]:>12.2f}" if baseline[name] else f"{'-':>12}"
                         for size in sizes[1:])
        print(f"{name:28}{values}{ratios}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000],
                        help="document counts; the first is the baseline (default 100 10000 100000)")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 documents")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--padding", choices=["copies", "products"], default="copies",
                        help="copies of the shipped knowledge base (default), or of its largest product only")
    parser.add_argument("--keep", type=Path, help="build in this folder and leave it (default: a temporary one)")
    args = parser.parse_args()
    sizes = args.sizes + ([1_000_000] if args.million else [])
    results = {}
    with tempfile.TemporaryDirectory() as temporary:
        scratch = args.keep or Path(temporary)
        scratch.mkdir(parents=True, exist_ok=True)
        # Nothing is removed until the end (about 30 GB with --million): on ext4 without a journal,
        # as on the machine these figures come from, the kernel will not reuse an inode freed in the
        # last minutes and scans past each one, so removing one size's store made the next import's
        # file creation 2-3 times slower (perf: most of the commit's time in recently_deleted()).
        for size in sizes:
            results[size] = measure(size, scratch, args.workers, args.padding)
            report(results)


if __name__ == "__main__":
    socket.setdefaulttimeout(600)
    main()
