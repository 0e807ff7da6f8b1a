"""Store backends compared: the file store against PostgreSQL, in one run, as ratios.

    python bench/backends.py [--commits 100] [--writers 1,4,16] [--nodes 1,3] [--seconds 3]
                             [--clients 4] [--only writes,reads,visible]

writes:  N writer processes (N in --writers), each committing --commits new revisions of its own
         FAQ (no conflicts: this measures the store, not retries), durably: the file store with
         fsync, PostgreSQL with fsync and synchronous_commit on (a throwaway server started
         from the machine's binaries, tests/pgcluster.py). Per backend and N: commit latency
         p50/p95 and commits/s over all writers; ratios against the file store with one writer.
reads:   1 and 3 `medkb serve` nodes (one worker each) on one store, the load spread over them
         by --clients client processes on kept-alive connections (bench/delivery.py's client):
         GET /v1/products/hemgenix per second; ratios against the file store with one node.
visible: a publish committed by this process (another node), and the time until a node's
         public GET shows it: 20 publishes, p50 and max.
Only loopback is used; every load is bounded in time. The machine is shared: compare the ratios.
"""
import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from delivery import PATH, _client, free_port, start, stop  # noqa: E402
from store import percentile  # noqa: E402

from api.services.documents import Documents  # noqa: E402
from api.store import open_store  # noqa: E402


def bench_documents(writers):
    from conftest import minimal_documents

    base = [d for d in minimal_documents() if d["type"] != "article"]
    template = next(d for d in base if d["type"] == "faq")
    return base + [dict(template, id=f"bench-q{n:02d}", position=10 + n, answer=f"Answer {n}.") for n in range(writers)]


def writer(root, url, faq_id, commits, start_at, results):
    """One writer process: waits for the common start, then commits `commits` revisions."""
    store = open_store(root, url)
    latencies = []
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.time()
    for i in range(commits):
        head = store.head("faq", faq_id)
        started = time.perf_counter()
        Documents(store).write(dict(head.content, answer=f"{faq_id} write {i}."), expected_revision=head.revision,
                               actor="bench")
        latencies.append(time.perf_counter() - started)
    results.put((began, time.time(), latencies))
    store.close()


def measure_writes(root, url, writers, commits):
    results = multiprocessing.Queue()
    start_at = time.time() + 2 + writers * 0.15  # every process started and its store open first
    processes = [multiprocessing.Process(target=writer, args=(root, url, f"bench-q{n:02d}", commits, start_at, results))
                 for n in range(writers)]
    for process in processes:
        process.start()
    rows = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    latencies = [value for _, _, values in rows for value in values]
    elapsed = max(end for _, end, _ in rows) - min(began for began, _, _ in rows)
    return percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000, len(latencies) / elapsed


def load_nodes(ports, seconds, clients):
    """Requests/s over `clients` client processes spread round-robin over the nodes' ports."""
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    results = multiprocessing.Queue()
    processes = [multiprocessing.Process(target=_client, args=(ports[n % len(ports)], request, seconds, True, results))
                 for n in range(clients)]
    for process in processes:
        process.start()
    count = sum(len(results.get()) for _ in processes)
    for process in processes:
        process.join()
    return count / seconds


def serve_nodes(count, root, url, scratch):
    nodes = []
    for n in range(count):
        port = free_port()
        env = {"MEDKB_DB": str(root if url is None else scratch / f"node-{n}"), "PYTHONPATH": str(ROOT),
               "MEDKB_RATE_LIMIT_PUBLIC": "off", **({"MEDKB_DATABASE_URL": url} if url else {})}
        nodes.append((start([sys.executable, "-m", "api.cli", "serve", "--port", str(port), "--workers", "1"], env, port),
                      port))
    return nodes


def measure_visible(store, port, rounds=20):
    """Seconds from a publish committed here to a node's GET showing it, `rounds` times."""
    import requests

    delays = []
    session = requests.Session()
    for n in range(rounds):
        head = store.head("product", "hemgenix")
        name = f"Hemgenix {n}"
        Documents(store).write(dict(head.content, name=name), expected_revision=head.revision, actor="bench",
                               publish=True)
        committed = time.perf_counter()
        while session.get(f"http://127.0.0.1:{port}{PATH}").json()["name"] != name:
            if time.perf_counter() - committed > 30:
                raise SystemExit("a publish never became visible")
            time.sleep(0.002)
        delays.append(time.perf_counter() - committed)
    return statistics.median(delays), max(delays)


def import_content(store):
    from api.knowledge.documents import load_set

    Documents(store).import_(load_set([ROOT / "content"]).documents.values(), actor="bench")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=100, help="commits per writer process")
    parser.add_argument("--writers", default="1,4,16")
    parser.add_argument("--nodes", default="1,3")
    parser.add_argument("--seconds", type=float, default=3, help="length of one read load")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--only", default="writes,reads,visible")
    args = parser.parse_args()
    only = set(args.only.split(","))
    writer_counts = [int(n) for n in args.writers.split(",")]
    node_counts = [int(n) for n in args.nodes.split(",")]
    multiprocessing.set_start_method("spawn")
    os.environ.pop("MEDKB_DATABASE_URL", None)  # each node is told its backend explicitly

    from pgcluster import Cluster

    from api.store.postgres import migrate

    cluster = Cluster(durable=True).start()
    print(f"PostgreSQL (fsync on) at {cluster.url()}", flush=True)
    report = {"writes": {}, "reads": {}, "visible": {}}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)

            def backend(name, purpose):
                """(folder, database URL or None) of a new, empty store of that backend."""
                if name == "files":
                    return scratch / f"{purpose}-files", None
                url = cluster.url(cluster.create_database())
                migrate(url)
                return scratch / f"{purpose}-pg", url

            if "writes" in only:
                for name in ("files", "postgres"):
                    for writers in writer_counts:
                        root, url = backend(name, f"writes-{writers}")
                        setup = open_store(root, url, durable=False)
                        Documents(setup).import_(bench_documents(writers), actor="bench")
                        setup.close()
                        p50, p95, rate = measure_writes(root, url, writers, args.commits)
                        report["writes"][f"{name} {writers}"] = (p50, p95, rate)
                        print(f"writes {name:8} {writers:2} writers: p50 {p50:6.2f} ms  p95 {p95:6.2f} ms  "
                              f"{rate:7.1f} commits/s", flush=True)
            for name in ("files", "postgres"):
                if not only & {"reads", "visible"}:
                    break
                root, url = backend(name, "reads")
                store = open_store(root, url, durable=False)
                import_content(store)
                for count in node_counts if "reads" in only else []:
                    nodes = serve_nodes(count, root, url, scratch / f"{name}-{count}")
                    try:
                        load_nodes([port for _, port in nodes], 1, args.clients)  # warm every node
                        rate = load_nodes([port for _, port in nodes], args.seconds, args.clients)
                    finally:
                        for process, _ in nodes:
                            stop(process)
                    report["reads"][f"{name} {count}"] = rate
                    print(f"reads  {name:8} {count} node(s): {rate:7.0f} requests/s", flush=True)
                if "visible" in only:
                    nodes = serve_nodes(1, root, url, scratch / f"{name}-visible")
                    try:
                        report["visible"][name] = measure_visible(store, nodes[0][1])
                    finally:
                        stop(nodes[0][0])
                    p50, worst = report["visible"][name]
                    print(f"visible {name:8}: publish to another node's GET p50 {p50 * 1000:.0f} ms, "
                          f"max {worst * 1000:.0f} ms", flush=True)
                store.close()
    finally:
        cluster.stop()
    print_ratios(report)


def print_ratios(report):
    writes, reads = report["writes"], report["reads"]
    if writes.get("files 1"):
        base_p50, _, base_rate = writes["files 1"]
        print("\nwrites, against the file store with 1 writer (latency p50 ratio; throughput ratio):")
        for name, (p50, _, rate) in writes.items():
            print(f"  {name:12} latency x{p50 / base_p50:5.2f}   throughput x{rate / base_rate:5.2f}")
    if reads.get("files 1"):
        print("reads, against the file store with 1 node (requests/s ratio):")
        for name, rate in reads.items():
            print(f"  {name:12} x{rate / reads['files 1']:5.2f}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
