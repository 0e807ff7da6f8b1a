"""Search benchmark: the store's search index at 100, 10,000 and 100,000 published documents.

    python bench/search.py [--sizes 100,10000,100000] [--runs 300]

For each size: a store holding the shipped content (imported as usual) whose search index is
built directly from a synthetic published set of that many documents: families of one product
(padded from Hemgenix, with a made-up name), its mechanism (6 results: steps and sections) and its
4 FAQs, each text naming its product, so common words ("liver") match a third of all results.
Importing 100,000 documents through the store is another benchmark's business (bench/store.py);
what is measured here is the index. Reported:

- index build time and size on disk;
- per-worker memory: a fresh process (as a `medkb serve` worker) opens the index, runs the
  queries, and reports its RSS and how much the index added to it;
- query p50/p95 in that process, for a common word, a typo, two words and a rare name;
- the time for a process to apply one publish (an edited FAQ published through the store).

Each figure is also given as the ratio against the 100-document run of the same invocation.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = {"common word": "liver", "typo": "hemophelia", "two words": "padua variant", "rare name": None}
FAMILY = 6  # documents per product family: product, mechanism, 4 FAQs


def made_up_name(number):
    """A pronounceable word per number, no digits: product names are words, not codes."""
    syllables = ["ba", "ke", "lo", "mi", "nu", "ra", "se", "ti", "vo", "zy", "qua", "dre", "fli", "gro", "pho", "sta"]
    word = ""
    while True:
        word += syllables[number % len(syllables)]
        number //= len(syllables)
        if not number:
            return word + "zumab"


def synthetic_documents(count):
    from api.knowledge.documents import load_set

    shipped = load_set([ROOT / "content"]).documents.values()
    product = next(d for d in shipped if d["id"] == "hemgenix")
    mechanism = next(d for d in shipped if d["type"] == "mechanism")
    faqs = [d for d in shipped if d["type"] == "faq"]
    for family in range(max(1, count // FAMILY)):
        name = made_up_name(family).capitalize()
        id_ = f"bench-{family:06d}"
        yield dict(product, id=id_, name=name, non_proprietary_name=f"{name.lower()} dezaparvovec",
                   summary=f"{name}: {product['summary']}", related=[])
        yield dict(mechanism, id=f"{id_}-mechanism", product=id_,
                   steps=[dict(step, body=f"{name}. {step['body']}") for step in mechanism["steps"]])
        for faq in faqs:
            yield dict(faq, id=f"{id_}-{faq['id']}", product=id_, question=faq["question"].replace("Hemgenix", name))


def build(db, count):
    from api.knowledge.documents import load_set
    from api.services import search
    from api.services.documents import Documents
    from api.store.store import Store

    store = Store(db, durable=False)
    Documents(store).import_(load_set([ROOT / "content"]).documents.values(), actor="bench")
    files = search.search_files(store)
    started = time.perf_counter()
    documents = 0

    def fill(rows):
        nonlocal documents
        for document in synthetic_documents(count):
            search._add_document(rows, document)
            documents += 1
        for type_name in search.SEARCHED:  # the shipped documents, so a publish has something to replace
            for name, id_ in store.keys(type_name):
                search._add_document(rows, store.published(name, id_).content)

    with files.locked():
        last = store.last_seq()
        generation = files.build({"format": search.FORMAT, "identity": search.store_identity(store), "seq": last,
                                  "draft_seq": last}, fill)
    seconds = time.perf_counter() - started
    size = sum(path.stat().st_size for path in generation.folder.iterdir())
    return {"documents": documents, "build_s": seconds, "size_mb": size / 1e6}


def apply_one_publish(db):
    from api.services import search
    from api.services.documents import Documents
    from api.store.store import Store

    store = Store(db, durable=False)
    head = store.head("faq", "hemgenix-how-does-it-work")
    Documents(store).write(dict(head.content, answer=head.content["answer"] + " Benchmarked."),
                           expected_revision=head.revision, actor="bench", publish=True)
    started = time.perf_counter()
    search.catch_up(store)
    return time.perf_counter() - started


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def worker(db, runs):
    """One worker process: open the index as `medkb serve` workers do, then time the queries."""
    from api.services import search
    from api.store.store import Store

    store = Store(db)
    before = rss_mb()

    class Model:  # the read model's one figure search follows: it has seen everything indexed
        published_seq = store.last_seq()

    published = search.StoreSearch(store, Model())
    rare = made_up_name(7).lower()  # family 7 exists at every size
    queries = {label: query or rare for label, query in QUERIES.items()}
    timings = {}
    for label, query in queries.items():
        assert published.search(query), f"nothing found for {query!r}"
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            published.search(query)
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        timings[label] = {"query": query, "p50_ms": statistics.median(samples),
                          "p95_ms": samples[int(len(samples) * 0.95) - 1]}
    print(json.dumps({"rss_mb": rss_mb(), "index_rss_mb": rss_mb() - before, "queries": timings}))


def measure(count, runs):
    with tempfile.TemporaryDirectory(prefix="medkb-search-bench-") as folder:
        db = Path(folder) / "db"
        figures = build(db, count)
        done = subprocess.run([sys.executable, __file__, "--worker", str(db), "--runs", str(runs)], check=True,
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        figures.update(json.loads(done.stdout))
        figures["apply_publish_ms"] = statistics.median(apply_one_publish(db) for _ in range(5)) * 1000
        return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,10000,100000")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        return worker(arguments.worker, arguments.runs)
    sizes = [int(size) for size in arguments.sizes.split(",")]
    results = {}
    for size in sizes:
        results[size] = measure(size, arguments.runs)
        print(f"measured {size} documents", file=sys.stderr)
    base = results[sizes[0]]

    def row(label, pick, unit):
        cells = []
        for size in sizes:
            value, reference = pick(results[size]), pick(base)
            cells.append(f"{value:,.2f} {unit} ({value / reference:.1f}x)" if reference else f"{value:,.2f} {unit}")
        print(f"| {label} | " + " | ".join(cells) + " |")

    print("| documents (indexed) | " + " | ".join(f"{size:,} ({results[size]['documents']:,})" for size in sizes)
          + " |")
    print("|---|" + "---|" * len(sizes))
    row("index build", lambda r: r["build_s"], "s")
    row("index size", lambda r: r["size_mb"], "MB")
    row("worker RSS after queries", lambda r: r["rss_mb"], "MB")
    row("  of which the index", lambda r: r["index_rss_mb"], "MB")
    for label in QUERIES:
        query = results[sizes[-1]]["queries"][label]["query"]
        row(f"{label} ({query!r}) p50", lambda r, label=label: r["queries"][label]["p50_ms"], "ms")
        row(f"{label} ({query!r}) p95", lambda r, label=label: r["queries"][label]["p95_ms"], "ms")
    row("apply one publish", lambda r: r["apply_publish_ms"], "ms")


if __name__ == "__main__":
    main()
