"""Delivery benchmark: medkb under gunicorn against a bare Flask app serving the same bytes.

    python bench/delivery.py [--seconds 2] [--rounds 5] [--clients 4] [--workers 2]

In one run: builds a store with the shipped content (5 products) padded to 100 products and one
padded to 10,000, starts `medkb serve` on each and the bare app (bench/bare_app.py) with the same
worker count, loads each with the same client, and prints requests/s and p99 for
GET /v1/products/hemgenix, for a 304 revalidation, and the ratios medkb/bare (target >= 0.8) and
10,000/100 (target >= 0.9). Only loopback is used; every load is bounded in time.
"""
import argparse
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATH = "/v1/products/hemgenix"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def build_store(root, products):
    from api.knowledge.documents import load_set
    from api.services.documents import Documents
    from api.store.store import Store

    documents = list(load_set([ROOT / "content"]).documents.values())
    template = next(d for d in documents if d["id"] == "benefix")
    padding = [dict(template, id=f"bench-product-{n:05d}", name=f"Bench {n}", related=[])
               for n in range(products - sum(d["type"] == "product" for d in documents))]
    Documents(Store(root, durable=False)).import_(documents + padding, actor="bench")


def start(command, env, port):
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    stop(process)
    raise SystemExit(f"server did not start: {' '.join(command)}")


def stop(process):
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=30)


def _client(port, request, seconds, results):
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port)) as connection:
            connection.sendall(request)
            response = b""
            while chunk := connection.recv(65536):
                response += chunk
        if not response.startswith((b"HTTP/1.1 200", b"HTTP/1.1 304", b"HTTP/1.0 200", b"HTTP/1.0 304")):
            raise SystemExit(f"unexpected answer: {response[:200]!r}")
        latencies.append(time.perf_counter() - started)
    results.put(latencies)


def load(port, seconds, clients, headers=""):
    """Requests/s and p99 (ms) from `clients` processes, each one connection per request."""
    request = (f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n").encode()
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_client, args=(port, request, seconds, results)) for _ in range(clients)]
    for worker in workers:
        worker.start()
    latencies = [value for _ in workers for value in results.get()]
    for worker in workers:
        worker.join()
    latencies.sort()
    return len(latencies) / seconds, latencies[int(0.99 * (len(latencies) - 1))] * 1000


def etag_of(port):
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(f"GET {PATH} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    etag = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n") if line.lower().startswith(b"etag:"))
    return etag.decode(), body


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2, help="length of one load round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = {}
    servers = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        try:
            ports = {}
            for products in (100, 10_000):
                started = time.perf_counter()
                build_store(scratch / f"db-{products}", products)
                print(f"built a store of {products} products in {time.perf_counter() - started:.1f}s", flush=True)
                ports[products] = free_port()
                servers.append(start([sys.executable, "-m", "api.cli", "serve", "--port", str(ports[products]),
                                      "--workers", str(args.workers)],
                                     {"MEDKB_DB": str(scratch / f"db-{products}"), "PYTHONPATH": str(ROOT)},
                                     ports[products]))
            etags = {products: etag_of(port)[0] for products, port in ports.items()}
            (scratch / "body.json").write_bytes(etag_of(ports[100])[1])
            ports["bare"] = free_port()
            servers.append(start([sys.executable, "-m", "gunicorn", "--workers", str(args.workers), "--bind",
                                  f"127.0.0.1:{ports['bare']}", "--chdir", str(ROOT / "bench"), "bare_app:app"],
                                 {"BARE_BODY": str(scratch / "body.json")}, ports["bare"]))
            runs = {"bare flask": (ports["bare"], "")}
            for products in (100, 10_000):
                runs[f"medkb {products}"] = (ports[products], "")
                runs[f"medkb {products} 304"] = (ports[products], f"If-None-Match: {etags[products]}\r\n")
            # Interleaved short rounds, medians: a noisy neighbour then hurts every server alike.
            samples = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, (port, headers) in runs.items():
                    samples[name].append(load(port, args.seconds, args.clients, headers))
            rows = {name: (statistics.median(s[0] for s in values), statistics.median(s[1] for s in values))
                    for name, values in samples.items()}
        finally:
            for server in servers:
                stop(server)
    for name, (rps, p99) in rows.items():
        print(f"{name:<18} {rps:8.0f} req/s   p99 {p99:6.2f} ms")
    bare_rps = rows["bare flask"][0]
    print(f"ratio medkb/bare (100 products): {rows['medkb 100'][0] / bare_rps:.2f} (target >= 0.8); "
          f"304 revalidation/bare: {rows['medkb 100 304'][0] / bare_rps:.2f}")
    print(f"ratio 10,000/100 products: {rows['medkb 10000'][0] / rows['medkb 100'][0]:.2f} (target >= 0.9); "
          f"304: {rows['medkb 10000 304'][0] / rows['medkb 100 304'][0]:.2f}")


if __name__ == "__main__":
    main()
