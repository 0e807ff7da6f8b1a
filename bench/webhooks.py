"""Webhooks benchmark: what subscriptions cost a commit, and how deliveries spread over the pool.

    python bench/webhooks.py [--documents 1000] [--subscriptions 100] [--commits 200]

1. Commit latency (durable, as served) with no subscription, then with N subscriptions, then with
   N subscriptions while a `medkb worker` process delivers every change to a loopback receiver.
   Rounds alternate between the cases so machine noise hits them alike. Target: <= 1.2x of none.
2. N subscriptions, one change, a receiver that takes 50 ms per request: the time until every
   subscription has it with a pool of 1 and of 8 threads, and the longest scheduler tick
   meanwhile (a tick only hands work to the pool, so it should stay far below one delivery).
Ratios, not absolute times, are what to compare: this machine is shared and noisy.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from api.services.documents import Documents
from api.services.webhooks import Settings, Webhooks, parse_allow  # noqa: E402
from api.store.store import Store  # noqa: E402
from bench.store import build  # noqa: E402
from webhook_receiver import Receiver  # noqa: E402


def commit_times(store, ids, count, offset):
    times = []
    for n in range(count):
        faq_id = ids[(offset + n * 7919) % len(ids)]
        head = store.head("faq", faq_id)
        started = time.perf_counter()
        Documents(store).write(dict(head.content, answer=f"Edit {offset + n}."), expected_revision=head.revision, actor="bench",
                    publish=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def subscribe_all(store, receiver, count, settings):
    service = Webhooks(store, settings)
    for n in range(count):
        receiver.secrets[f"s{n}"] = service.subscribe(receiver.url(f"s{n}")).secret
    return service


def commit_latency(args, scratch, receiver):
    settings = Settings(allow=parse_allow("127.0.0.1"))
    roots = {case: Path(scratch) / case for case in ("none", "subscribed", "delivering")}
    ids = None
    for root in roots.values():
        ids = build(root, args.documents, 1)
    stores = {case: Store(root) for case, root in roots.items()}
    for case in ("subscribed", "delivering"):
        subscribe_all(stores[case], receiver, args.subscriptions, settings)
    worker = subprocess.Popen([sys.executable, "-m", "api.cli", "worker", "--interval", "0.2"], cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(roots["delivering"]),
                                   "MEDKB_WEBHOOK_ALLOW": "127.0.0.1"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        times = {case: [] for case in stores}
        rounds = 10
        for r in range(rounds):
            for case, store in stores.items():
                times[case] += commit_times(store, ids, args.commits // rounds, r * 1000)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    base = statistics.median(times["none"])
    for case, samples in times.items():
        print(f"commit, {case:>10} ({args.subscriptions if case != 'none' else 0} subscriptions): "
              f"p50 {statistics.median(samples):.2f} ms, ratio to none {statistics.median(samples) / base:.2f}")
    print(f"  the worker delivered {len(receiver.received)} messages meanwhile")


def spread(args, scratch, receiver):
    receiver.delay = 0.05
    for concurrency in (1, 8):
        receiver.received.clear()
        root = Path(scratch) / f"spread-{concurrency}"
        ids = build(root, 10, 1)  # a small store: this part measures the pool, not the store
        store = Store(root)
        service = subscribe_all(store, receiver, args.subscriptions,
                                Settings(allow=parse_allow("127.0.0.1"), concurrency=concurrency))
        commit_times(store, ids, 1, 0)
        started = time.perf_counter()
        ticks = []
        while len(receiver.received) < args.subscriptions:
            tick_started = time.perf_counter()
            service.tick()
            ticks.append(time.perf_counter() - tick_started)
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        service.close()
        # The first tick reads every subscription's files; later ones stat them and skip what is running.
        print(f"deliver 1 change to {args.subscriptions} subscriptions, pool of {concurrency}: {elapsed:.2f} s; "
              f"first tick {ticks[0] * 1000:.1f} ms, later ticks p50 {statistics.median(ticks[1:] or [0]) * 1000:.1f}"
              f" ms max {max(ticks[1:] or [0]) * 1000:.1f} ms (one delivery takes >= 50 ms)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--commits", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, Receiver() as receiver:
        commit_latency(args, scratch, receiver)
        spread(args, scratch, receiver)


if __name__ == "__main__":
    main()
