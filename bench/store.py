"""Store benchmark: commit and published-read latency as the knowledge base grows.

    python bench/store.py [--sizes 100,1000,10000] [--revisions 3] [--commits 300]

Builds a store per size (each document with several revisions of history), then
measures, in the same run, durable commits (fsync on, as in production) and
published reads through the read model. Prints p50/p99 per size and the ratios
largest/smallest: the targets are commit <= 2 and read <= 1.2. Ratios, not
absolute times, are what to compare: this machine is shared and noisy.
"""
import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.store.readmodel import ReadModel  # noqa: E402
from api.store.store import Store  # noqa: E402
from tests.conftest import minimal_documents  # noqa: E402


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def build(root, size, revisions):
    """`size` FAQ documents about one product, each written `revisions` times (no fsync: set-up only)."""
    store = Store(root, durable=False)
    base = [d for d in minimal_documents() if d["type"] != "article"]
    template = next(d for d in base if d["type"] == "faq")
    faqs = [dict(template, id=f"faq-{n:06d}", position=n + 1, answer=f"Answer {n}.") for n in range(size)]
    store.write_many(base + faqs, actor="bench", publish=True)
    for revision in range(2, revisions + 1):
        store.write_many([dict(f, answer=f"Answer {f['id']} v{revision}.") for f in faqs], actor="bench", publish=True)
    return [f["id"] for f in faqs]


def measure(root, ids, commits, reads, rng):
    store = Store(root)  # durable, as served
    commit_ms = []
    for i in range(commits):
        faq_id = rng.choice(ids)
        head = store.head("faq", faq_id)
        started = time.perf_counter()
        store.write(dict(head.content, answer=f"Edited {i}."), expected_revision=head.revision, actor="bench")
        commit_ms.append((time.perf_counter() - started) * 1000)
    model = ReadModel(store)
    read_us = []
    picks = [rng.choice(ids) for _ in range(reads)]
    for faq_id in picks:
        started = time.perf_counter_ns()
        model.refresh()
        body = model.get("faq", faq_id).body
        read_us.append((time.perf_counter_ns() - started) / 1000)
        assert body
    return commit_ms, read_us


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--revisions", type=int, default=3)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--reads", type=int, default=50_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(7)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            root = Path(scratch) / f"store-{size}"
            started = time.perf_counter()
            ids = build(root, size, args.revisions)
            built = time.perf_counter() - started
            commit_ms, read_us = measure(root, ids, args.commits, args.reads, rng)
            results[size] = commit_ms, read_us
            print(f"{size:>6} docs x {args.revisions} revisions (built in {built:.1f}s): "
                  f"commit p50 {statistics.median(commit_ms):.2f} ms p99 {percentile(commit_ms, .99):.2f} ms | "
                  f"read p50 {statistics.median(read_us):.2f} us p99 {percentile(read_us, .99):.2f} us", flush=True)
    small, large = results[sizes[0]], results[sizes[-1]]
    commit_ratio = statistics.median(large[0]) / statistics.median(small[0])
    read_ratio = statistics.median(large[1]) / statistics.median(small[1])
    print(f"ratio {sizes[-1]}/{sizes[0]}: commit p50 {commit_ratio:.2f} (target <= 2), "
          f"p99 {percentile(large[0], .99) / percentile(small[0], .99):.2f}; "
          f"read p50 {read_ratio:.2f} (target <= 1.2), p99 {percentile(large[1], .99) / percentile(small[1], .99):.2f}")


if __name__ == "__main__":
    main()
