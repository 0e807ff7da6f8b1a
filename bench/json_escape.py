"""Cost of escaping <, > and & in every JSON body (api/web/safejson.py) on the hot read path.

    python bench/json_escape.py [--requests 3000] [--rounds 5]

In one process: a store with the shipped content; GET /v1/products/hemgenix and /v1/feed through
Flask's test client, alternating rounds with escaping on and off (script_safe replaced by the
identity). Prints requests/s for each and the ratio on/off (target >= 0.97), plus the cost of
one script_safe call on each body against a whole request. No network, no timed assertions.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATHS = ("/v1/products/hemgenix", "/v1/feed")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from api.app import create_app
    from api.knowledge.documents import load_set
    from api.services.documents import Documents
    from api.store.store import Store
    from api.web import caching, safejson

    with tempfile.TemporaryDirectory() as folder:
        Documents(Store(folder, durable=False)).import_(load_set([ROOT / "content"]).documents.values(), actor="bench")
        client = create_app({"MEDKB_DB": folder, "MEDKB_CHECK_INTERVAL": 60}).test_client()
        for path in PATHS:
            body = client.get(path).data
            rates = {"on": [], "off": []}
            for _ in range(args.rounds):
                for mode in ("on", "off"):
                    caching.script_safe = safejson.script_safe if mode == "on" else (lambda body: body)
                    started = time.perf_counter()
                    for _ in range(args.requests):
                        client.get(path)
                    rates[mode].append(args.requests / (time.perf_counter() - started))
            caching.script_safe = safejson.script_safe
            on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
            started = time.perf_counter()
            for _ in range(10_000):
                safejson.script_safe(body)
            escape_us = (time.perf_counter() - started) / 10_000 * 1e6
            print(f"{path} ({len(body):,} bytes): escaped {on:,.0f} req/s, unescaped {off:,.0f} req/s, "
                  f"ratio {on / off:.3f}; script_safe {escape_us:.1f} us = {escape_us * on / 1e6:.2%} of a request")


if __name__ == "__main__":
    main()
