"""Console benchmark: how page cost grows with the size of the knowledge base.

    python bench/console.py [--small 100] [--large 10000] [--rounds 30]

In one run: builds a store with the shipped content padded with FAQs to --small documents and one
to --large, signs a reviewer in on each (Flask test client, one process), and prints the median
time of the queues page, a document page and an edit page, with the ratio large/small. The queues
page filters every document in memory (the working set is replayed from the change log, not read
from files), so its ratio grows with the size; the document and edit pages should stay near 1.
"""
import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGES = {"queues": "/console/", "document": "/console/documents/faq/hemgenix-how-does-it-work",
         "edit": "/console/documents/faq/hemgenix-how-does-it-work/edit"}


def build(root, total):
    from api.knowledge.documents import load_set
    from api.services.documents import Documents
    from api.store.store import Store

    documents = list(load_set([ROOT / "content"]).documents.values())
    template = next(d for d in documents if d["id"] == "hemgenix-how-does-it-work")
    padding = [dict(template, id=f"bench-faq-{n:06d}", question=f"Bench question {n}?", position=100 + n)
               for n in range(total - len(documents))]
    Documents(Store(root, durable=False)).import_(documents + padding, actor="bench")


def client_for(root):
    from api.app import create_app
    from api.store.keys import KeyStore

    app = create_app({"MEDKB_DB": str(root), "TESTING": True})
    _, secret = KeyStore(root).create("author", "bench")
    client = app.test_client()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/sign-in").text).group(1)
    client.post("/console/sign-in", data={"key": secret, "csrf": token})
    return client


def median_ms(client, path, rounds):
    client.get(path)  # the first request builds the in-memory working set
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(timings) * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in (args.small, args.large):
            root = Path(folder) / str(size)
            build(root, size)
            client = client_for(root)
            results[size] = {name: median_ms(client, path, args.rounds) for name, path in PAGES.items()}
    print(f"{'page':<10}{args.small:>10} docs{args.large:>10} docs{'ratio':>10}")
    for name in PAGES:
        small, large = results[args.small][name], results[args.large][name]
        print(f"{name:<10}{small:>12.1f} ms{large:>12.1f} ms{large / small:>10.2f}")


if __name__ == "__main__":
    main()
