"""Bundle benchmark: what GET /v1/bundle costs a server as the published set grows, as ratios
against 100 documents.

    python bench/bundle.py [--sizes 100 10000] [--hundred-thousand] [--workers 2] [--padding copies|products]

For each size, in one run: writes a valid content set (bench/scale.py's: the shipped content and
suffixed copies of it, or copies of the BeneFIX product with --padding products), imports it
(`medkb import`, which builds the bundle files after the read model), then measures

  body MB           the bundle's size, plain, gzip and br
  build (s), MB     one build of the bundle files in a process of its own, from the read model, and
                    that process's peak RSS (what a worker's build thread adds, at most)
  rss start/after   resident memory of each worker (the largest) after start, and after every
                    worker has served the bundle in every encoding several times
  ttfb / full (ms)  p50 time to the first byte of the body and to its last, per encoding, on fresh
                    connections (the worker opens the file and streams it)
  after publish     a FAQ published (in this process, through the store), then: the first
                    bundle request's time to first byte (it starts the build and waits up to 1 s
                    for it), and how long until a bundle carries the publish (polled every 50 ms)
  rss after publish the workers' RSS once one of them built the new bundle in its thread

and prints a table, each figure also as a ratio against the first size (measured in the same
run). The machine is shared: compare ratios, not absolute times. Only loopback is used; every wait
is bounded.
"""
import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scale import environment, medkb, report, worker_rss, write_content  # noqa: E402
from bench.server import Server  # noqa: E402

ENCODINGS = ("identity", "gzip", "br")
FETCHES = 6  # per encoding; fresh connections spread them over the workers
# Peak RSS from VmHWM: getrusage's ru_maxrss would carry over the forked parent's peak across exec.
BUILD_ONCE = """
import sys, time
from api.knowledge.documents import references
from api.services.bundle import BundleFiles
from api.store.modelfile import ModelFile, default_path
from api.store.store import Store

store = Store(sys.argv[1])
model = ModelFile(default_path(store), references)
model.open(store)
started = time.perf_counter()
BundleFiles(model, sys.argv[2]).build()
built = time.perf_counter() - started
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
print(built, peak / 1024)
"""


def fetch(base, encoding):
    """(ms to the first byte of the body, ms to its last, bytes, ETag) of one GET on a new connection."""
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=600)
    started = time.perf_counter()
    connection.request("GET", "/v1/bundle", headers={"Accept-Encoding": encoding})
    response = connection.getresponse()
    first = response.read(1)
    first_byte = time.perf_counter() - started
    rest = response.read()
    done = time.perf_counter() - started
    connection.close()
    if response.status != 200:
        raise SystemExit(f"GET /v1/bundle ({encoding}): {response.status} {(first + rest)[:300]!r}")
    return first_byte * 1000, done * 1000, len(first) + len(rest), response.getheader("ETag")


def measure(size, scratch, workers, padding):
    content, db = scratch / f"content-{size}", scratch / f"db-{size}"
    env = environment(db)
    for part in write_content(content, size, padding=padding):
        started = time.perf_counter()
        medkb("import", part, env=env)
        print(f"[{size}] imported in {time.perf_counter() - started:.1f} s", flush=True)
        shutil.rmtree(part)
    figures = {}
    built = subprocess.run([sys.executable, "-c", BUILD_ONCE, str(db), str(scratch / f"bundle-{size}")], cwd=ROOT,
                           env={**os.environ, **env}, capture_output=True, text=True, check=True)
    figures["build (s)"], figures["build process peak RSS (MB)"] = map(float, built.stdout.split())
    sizes = {path.suffix: path.stat().st_size / 1e6 for path in (scratch / f"bundle-{size}").glob("*.json*")}
    figures["body plain (MB)"], figures["body gzip (MB)"], figures["body br (MB)"] = \
        sizes[".json"], sizes[".gz"], sizes[".br"]
    shutil.rmtree(scratch / f"bundle-{size}")

    server = Server(db, workers, env=env, ready_within=1800)
    try:
        time.sleep(1)  # let every worker finish starting
        figures["rss per worker, start (MB)"] = max(worker_rss(server))
        for encoding in ENCODINGS:
            samples = [fetch(server.base, encoding) for _ in range(FETCHES)]
            figures[f"{encoding} first byte p50 (ms)"] = statistics.median(sample[0] for sample in samples)
            figures[f"{encoding} full body p50 (ms)"] = statistics.median(sample[1] for sample in samples)
        figures["rss per worker, after bundles (MB)"] = max(worker_rss(server))

        from api.services.documents import Documents
        from api.store.store import Store

        store = Store(db)
        head = store.head("faq", "hemgenix-how-does-it-work")
        change = Documents(store).write(dict(head.content, question=f"How does Hemgenix work? ({size})"),
                                        expected_revision=head.revision, actor="bench", publish=True)
        time.sleep(0.2)  # past the read models' check interval: the next request knows of the publish
        figures["after publish: first byte (ms)"] = fetch(server.base, "gzip")[0]
        started, deadline = time.perf_counter(), time.monotonic() + 600
        while not fetch(server.base, "gzip")[3].startswith(f'"bundle-{change.seq}-'):
            if time.monotonic() > deadline:
                raise SystemExit(f"[{size}] the publish never reached the bundle")
            time.sleep(0.05)
        figures["after publish: until in bundle (s)"] = time.perf_counter() - started
        for encoding in ENCODINGS:
            for _ in range(FETCHES):
                fetch(server.base, encoding)
        figures["rss per worker, after publish (MB)"] = max(worker_rss(server))
    finally:
        server.stop()
    print(f"[{size}] " + ", ".join(f"{name} {value:.2f}" for name, value in figures.items()), flush=True)
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000],
                        help="document counts; the first is the baseline (default 100 10000)")
    parser.add_argument("--hundred-thousand", action="store_true", help="also 100,000 documents")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--padding", choices=["copies", "products"], default="copies")
    args = parser.parse_args()
    sizes = args.sizes + ([100_000] if args.hundred_thousand else [])
    results = {}
    with tempfile.TemporaryDirectory() as temporary:
        scratch = Path(temporary)
        for size in sizes:
            results[size] = measure(size, scratch, args.workers, args.padding)
            report(results)
            shutil.rmtree(scratch / f"db-{size}")


if __name__ == "__main__":
    main()
