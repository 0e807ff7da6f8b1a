"""Delivery benchmark: `medkb serve` against a bare Flask app serving the same bytes the same way.

    python bench/delivery.py [--seconds 2] [--rounds 3] [--clients 4] [--workers 2]

In one run: builds a store with the shipped content (5 products) padded to 100 products and one
padded to 10,000, starts `medkb serve` on each and the bare app (bench/bare_app.py, under granian
with the same buffering front and worker count), loads each with the same client, and prints
requests/s and p99 for GET /v1/products/hemgenix and for a 304 revalidation, once with a new
connection per request and once over kept-alive connections, and the ratios medkb/bare (target
>= 0.8) and 10,000/100 (target >= 0.9), each also as the servers' CPU time per request, which a
busy shared machine disturbs far less than throughput. medkb runs with its rate limiter counting
every request (a limit too high to refuse any), as in production. Repeated reads are answered by
medkb's per-worker response cache (api/web/responsecache.py); a third medkb server runs with the
cache off, so the rendering path (what the first read after a publish costs) is reported too. Only
loopback is used; every load is bounded in time.
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


def group_members(group):
    """(pid, fields of /proc/<pid>/stat after the command) of every process of process group `group`."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:  # state ppid pgrp ...
            yield int(entry.name), fields


def cpu_seconds(group):
    """CPU time used so far by the processes of process group `group`: a server and its workers.
    On a shared machine throughput moves with the neighbours' load; CPU time per request much less."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _, fields in group_members(group))  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _check(response):
    if not response.startswith((b"HTTP/1.1 200", b"HTTP/1.1 304")):
        raise SystemExit(f"unexpected answer: {response[:200]!r}")


def _read_response(connection, buffer):
    """One response from a kept-alive connection (Content-Length framed); returns it and the rest."""
    while b"\r\n\r\n" not in buffer:
        buffer += connection.recv(65536)
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += connection.recv(65536)
    return head, rest[length:]


def _client(port, request, seconds, keepalive, results):
    latencies, deadline = [], time.monotonic() + seconds
    connection, buffer = None, b""
    while time.monotonic() < deadline:
        started = time.perf_counter()
        if keepalive:
            connection = connection or socket.create_connection(("127.0.0.1", port))
            connection.sendall(request)
            head, buffer = _read_response(connection, buffer)
            _check(head)
        else:
            with socket.create_connection(("127.0.0.1", port)) as fresh:
                fresh.sendall(request)
                response = b""
                while chunk := fresh.recv(65536):
                    response += chunk
            _check(response)
        latencies.append(time.perf_counter() - started)
    if connection:
        connection.close()
    results.put(latencies)


def load(server, port, seconds, clients, headers="", keepalive=False):
    """Requests/s, p99 (ms) and the server's CPU time per request (µs) under `clients` processes:
    one connection per request, or one each kept alive."""
    connection_header = "" if keepalive else "Connection: close\r\n"
    request = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n{connection_header}{headers}\r\n".encode()
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_client, args=(port, request, seconds, keepalive, results))
               for _ in range(clients)]
    cpu_before = cpu_seconds(server.pid)
    for worker in workers:
        worker.start()
    latencies = [value for _ in workers for value in results.get()]
    cpu = cpu_seconds(server.pid) - cpu_before
    for worker in workers:
        worker.join()
    latencies.sort()
    return (len(latencies) / seconds, latencies[int(0.99 * (len(latencies) - 1))] * 1000,
            cpu / len(latencies) * 1e6)


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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = {}
    servers = {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        try:
            ports = {}
            for products in (100, 10_000):
                started = time.perf_counter()
                build_store(scratch / f"db-{products}", products)
                print(f"built a store of {products} products in {time.perf_counter() - started:.1f}s", flush=True)
                ports[products] = free_port()
                servers[products] = start([sys.executable, "-m", "api.cli", "serve", "--port", str(ports[products]),
                                           "--workers", str(args.workers)],
                                          {"MEDKB_DB": str(scratch / f"db-{products}"), "PYTHONPATH": str(ROOT),
                                           "MEDKB_RATE_LIMIT_PUBLIC": "1000000000 per minute"},
                                          ports[products])
            ports["uncached"] = free_port()
            servers["uncached"] = start([sys.executable, "-m", "api.cli", "serve", "--port", str(ports["uncached"]),
                                         "--workers", str(args.workers)],
                                        {"MEDKB_DB": str(scratch / "db-100"), "PYTHONPATH": str(ROOT),
                                         "MEDKB_RATE_LIMIT_PUBLIC": "1000000000 per minute",
                                         "MEDKB_RESPONSE_CACHE_BYTES": "0"}, ports["uncached"])
            etags = {products: etag_of(port)[0] for products, port in ports.items()}
            (scratch / "body.json").write_bytes(etag_of(ports[100])[1])
            ports["bare"] = free_port()
            servers["bare"] = start([sys.executable, "-m", "granian", "--interface", "asginl", "--factory", "--http", "1",
                                     "--no-ws", "--workers", str(args.workers), "--port", str(ports["bare"]),
                                     "--working-dir", str(ROOT / "bench"), "bare_app:create_asgi_app"],
                                    {"BARE_BODY": str(scratch / "body.json")}, ports["bare"])
            runs = {}
            for keepalive, suffix in ((False, ""), (True, " keep-alive")):
                runs[f"bare flask{suffix}"] = ("bare", "", keepalive)
                runs[f"medkb 100 uncached{suffix}"] = ("uncached", "", keepalive)
                for products in (100, 10_000):
                    runs[f"medkb {products}{suffix}"] = (products, "", keepalive)
                    runs[f"medkb {products} 304{suffix}"] = (products, f"If-None-Match: {etags[products]}\r\n",
                                                             keepalive)
            # Interleaved short rounds, medians: a noisy neighbour then hurts every server alike.
            samples = {name: [] for name in runs}
            for _ in range(args.rounds):
                for name, (server, headers, keepalive) in runs.items():
                    samples[name].append(load(servers[server], ports[server], args.seconds, args.clients, headers,
                                              keepalive))
            rows = {name: tuple(statistics.median(sample[i] for sample in values) for i in range(3))
                    for name, values in samples.items()}
        finally:
            for server in servers.values():
                stop(server)
    for name, (rps, p99, cpu) in rows.items():
        print(f"{name:<30} {rps:8.0f} req/s   p99 {p99:6.2f} ms   server CPU {cpu:6.0f} µs/request")
    for suffix in ("", " keep-alive"):
        bare, medkb, medkb_304 = rows[f"bare flask{suffix}"], rows[f"medkb 100{suffix}"], rows[f"medkb 100 304{suffix}"]
        large, large_304 = rows[f"medkb 10000{suffix}"], rows[f"medkb 10000 304{suffix}"]
        uncached = rows[f"medkb 100 uncached{suffix}"]
        print(f"[{suffix.strip() or 'new connection per request'}]")
        print(f"  medkb/bare (100 products), throughput: {medkb[0] / bare[0]:.2f} (target >= 0.8), "
              f"CPU per request: {bare[2] / medkb[2]:.2f}; 304 revalidation/bare: {medkb_304[0] / bare[0]:.2f}, "
              f"CPU {bare[2] / medkb_304[2]:.2f}")
        print(f"  medkb with the response cache off/bare, throughput: {uncached[0] / bare[0]:.2f}, "
              f"CPU per request: {bare[2] / uncached[2]:.2f}")
        print(f"  10,000/100 products, throughput: {large[0] / medkb[0]:.2f} (target >= 0.9), "
              f"CPU per request: {medkb[2] / large[2]:.2f}; 304: {large_304[0] / medkb_304[0]:.2f}, "
              f"CPU {medkb_304[2] / large_304[2]:.2f}")


if __name__ == "__main__":
    main()
