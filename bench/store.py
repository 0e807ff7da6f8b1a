"""Store benchmark: commit and published-read latency as the knowledge base grows, commit
latency as one document's history grows, and the change feed as the change sequence grows.

    python bench/store.py [--sizes 100,1000,10000] [--revisions 3] [--commits 300]
                          [--history 1000] [--feed-changes 100,100000] [--import-docs 10000]
                          [--only size,history,feed,import]

size:    a store per size (each document with several revisions of history); durable commits
         (fsync on, as in production) and published reads through the read model. Targets,
         largest/smallest: commit <= 2, read <= 1.2.
history: one 100 KB document edited --history times, durably; commit p50 of the last 20 edits
         against the first 20. Target <= 2 (a commit must not rewrite the document's history).
feed:    stores of --feed-changes changes (all but the first few are drafts; built without
         fsync), then GET /v1/feed?since=<after the publications>&limit=1 (an empty page) and
         the same with If-None-Match (a 304), in process. Target, largest/smallest: <= 1.2.
import:  --import-docs new FAQs committed durably in batches of 1,000 (Store.commit_batch, as
         `medkb import` does), then a new revision of each; ms per document, and its ratio to
         the file system's own floor measured in the same run on the same disk: per document a
         folder, two files of the same sizes and one rename, then one sync.
Ratios, not absolute times, are what to compare: this machine is shared and noisy.
"""
import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.knowledge.documents import references  # noqa: E402
from api.services.documents import Documents  # noqa: E402
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
    Documents(store).import_(base + faqs, actor="bench")
    for revision in range(2, revisions + 1):
        # Each file "exported" at the previous revision, edited: the import applies it.
        Documents(store).import_([dict(f, revision=revision - 1, answer=f"Answer {f['id']} v{revision}.")
                                  for f in faqs], actor="bench")
    return [f["id"] for f in faqs]


def measure(root, ids, commits, reads, rng):
    store = Store(root)  # durable, as served
    commit_ms = []
    for i in range(commits):
        faq_id = rng.choice(ids)
        head = store.head("faq", faq_id)
        started = time.perf_counter()
        Documents(store).write(dict(head.content, answer=f"Edited {i}."), expected_revision=head.revision,
                               actor="bench")
        commit_ms.append((time.perf_counter() - started) * 1000)
    model = ReadModel(store, references)
    read_us = []
    picks = [rng.choice(ids) for _ in range(reads)]
    for faq_id in picks:
        started = time.perf_counter_ns()
        model.refresh()
        body = model.get("faq", faq_id).body
        read_us.append((time.perf_counter_ns() - started) / 1000)
        assert body
    return commit_ms, read_us


def run_sizes(args, scratch):
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(7)
    results = {}
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


def big_mechanism(size):
    """A valid mechanism document of about `size` bytes."""
    template = next(d for d in minimal_documents() if d["type"] == "mechanism")
    step = template["steps"][0]
    count = max(1, size // 2150)
    steps = [dict(step, position=n + 1, title=f"Step {n + 1}", body=f"Step {n + 1}. " + "A sentence of body. " * 100)
             for n in range(count)]
    return dict(template, steps=steps)


def run_history(args, scratch):
    store = Store(Path(scratch) / "history")  # durable, as served
    base = [d for d in minimal_documents() if d["type"] not in ("article", "mechanism")]
    document = big_mechanism(100_000)
    Documents(store).import_(base + [document], actor="bench")
    size = len(orjson.dumps(store.head("mechanism", document["id"]).content))
    commit_ms = []
    for n in range(2, args.history + 1):
        head = store.head("mechanism", document["id"])
        content = dict(head.content, summary=f"Edit {n}.")
        started = time.perf_counter()
        Documents(store).write(content, expected_revision=head.revision, actor="bench")
        commit_ms.append((time.perf_counter() - started) * 1000)
    first, last = statistics.median(commit_ms[:20]), statistics.median(commit_ms[-20:])
    print(f"one {size / 1000:.0f} KB document, {args.history} revisions: commit p50 at revisions 2-21 {first:.2f} ms, "
          f"at {args.history - 19}-{args.history} {last:.2f} ms; ratio {last / first:.2f} (target <= 2)", flush=True)


def build_changes(root, total):
    """The minimal knowledge base published, then workflow transitions on one FAQ up to `total`
    changes. Committing 100,000 changes one by one takes far too long on a shared machine (a
    rename costs milliseconds here), so the transitions are appended to the change logs in bulk,
    exactly as commits would write them; `verify` then checks the store is sound."""
    store = Store(root, durable=False)
    Documents(store).import_(minimal_documents(), actor="bench")
    published = store.last_seq()
    layout, lines = store.layout, {}
    for seq in range(published + 1, total + 1):
        change = {"seq": seq, "type": "faq", "id": "drug-q1", "revision": 1, "kind": "transition", "actor": "bench",
                  "at": "2026-11-24T00:00:00Z", "message": "", "details": None}
        lines.setdefault(layout.change_log(seq), []).append(orjson.dumps(change) + b"\n")
    for path, chunk in lines.items():
        with open(path, "ab") as handle:
            handle.write(b"".join(chunk))
    pointers = orjson.loads(layout.pointers_path("faq", "drug-q1").read_bytes())
    layout.pointers_path("faq", "drug-q1").write_bytes(orjson.dumps(dict(pointers, last_seq=total)))
    layout.head_path.write_bytes(orjson.dumps({"layout": 2, "seq": total, "pending": None}))
    assert Store(root).verify() == []
    return published


def time_feed(root, since, requests_count):
    from api.app import create_app

    client = create_app({"MEDKB_DB": str(root), "TESTING": True}).test_client()
    url = f"/v1/feed?since={since}&limit=1"
    first = client.get(url)
    assert first.status_code == 200 and first.get_json()["changes"] == [], first.get_json()
    etag = first.headers["ETag"]
    timings = {"empty page": [], "304": []}
    for _ in range(requests_count):
        for label, headers in (("empty page", {}), ("304", {"If-None-Match": etag})):
            started = time.perf_counter_ns()
            response = client.get(url, headers=headers)
            timings[label].append((time.perf_counter_ns() - started) / 1000)
            assert response.status_code == (304 if headers else 200)
    return timings


def run_feed(args, scratch):
    counts = [int(c) for c in args.feed_changes.split(",")]
    results = {}
    for total in counts:
        root = Path(scratch) / f"feed-{total}"
        started = time.perf_counter()
        since = build_changes(root, total)
        built = time.perf_counter() - started
        results[total] = time_feed(root, since, 2000)
        print(f"{total:>7} changes (built in {built:.1f}s): " + ", ".join(
            f"{label} p50 {statistics.median(samples):.0f} us" for label, samples in results[total].items()),
            flush=True)
    small, large = results[counts[0]], results[counts[-1]]
    print(f"ratio {counts[-1]}/{counts[0]}: " + ", ".join(
        f"{label} p50 {statistics.median(large[label]) / statistics.median(small[label]):.2f}" for label in small)
        + " (target <= 1.2)")


def file_system_floor(folder, revisions, pointers):
    """ms per document of the bare file operations a batched commit of new documents cannot do without."""
    folder.mkdir()
    started = time.perf_counter()
    for n, revision in enumerate(revisions):
        document = f"{folder}/{n}"
        os.mkdir(document)
        for name, data in (("1.json", revision), (".pointers.json.tmp", pointers)):
            descriptor = os.open(f"{document}/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(descriptor, data)
            os.close(descriptor)
        os.replace(f"{document}/.pointers.json.tmp", f"{document}/pointers.json")
    os.sync()
    return (time.perf_counter() - started) * 1000 / len(revisions)


def run_import(args, scratch):
    store = Store(Path(scratch) / "import")  # durable, as `medkb import` writes
    base = [d for d in minimal_documents() if d["type"] != "article"]
    Documents(store).import_(base, actor="bench")
    template = next(d for d in base if d["type"] == "faq")
    faqs = [dict(template, id=f"faq-{n:06d}", position=n + 1, answer=f"Answer {n}.") for n in range(args.import_docs)]
    timings = {}
    for label, expected in (("new documents", 0), ("a new revision of each", 1)):
        commits = [Documents._revision_commit(dict(f, answer=f"{f['answer']} ({label})"), expected, "bench", "", True)
                   for f in faqs]
        started = time.perf_counter()
        for start in range(0, len(commits), 1000):
            store.commit_batch(commits[start:start + 1000])
        timings[label] = (time.perf_counter() - started) * 1000 / len(commits)
    sample = store.layout.revision_path("faq", faqs[0]["id"], 1).read_bytes()
    pointers = store.layout.pointers_path("faq", faqs[0]["id"]).read_bytes()
    floor = file_system_floor(Path(scratch) / "floor", [sample] * len(faqs), pointers)
    print(f"import of {len(faqs)} documents in batches of 1000: " + ", ".join(
        f"{label} {ms:.3f} ms/doc ({ms / floor:.1f}x the file system's floor)" for label, ms in timings.items())
        + f"; floor {floor:.3f} ms/doc", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--revisions", type=int, default=3)
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--reads", type=int, default=50_000)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--feed-changes", default="100,100000")
    parser.add_argument("--import-docs", type=int, default=10_000)
    parser.add_argument("--only", default="size,history,feed,import")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for name, run in (("size", run_sizes), ("history", run_history), ("feed", run_feed), ("import", run_import)):
            if name in args.only.split(","):
                run(args, scratch)


if __name__ == "__main__":
    main()
