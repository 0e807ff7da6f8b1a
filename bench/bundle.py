"""Bundle benchmark: what GET /v1/bundle costs as the published set grows.

    python bench/bundle.py [--sizes 1000,10000] [--requests 50]

Per size: the time to build the bundle after a publish (once per change of the published set),
the first gzip request (compresses once), and then repeated gzip requests, which only send the
bytes kept with the bundle, and repeated If-None-Match requests (304). Prints the body sizes and
the ratios largest/smallest: a repeat request costs about the copy of its bytes, a 304 nothing
that grows with the set. Ratios, not absolute times: this machine is shared and noisy.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app  # noqa: E402
from bench.store import build  # noqa: E402


def timed(call, repeat):
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for size in sizes:
            root = Path(scratch) / f"store-{size}"
            build(root, size, 1)
            app = create_app({"MEDKB_DB": str(root), "MEDKB_CHECK_INTERVAL": 3600})
            client = app.test_client()
            bundles = app.extensions["medkb.bundles"]
            client.get("/healthz")
            build_ms = timed(lambda: bundles._build(), 3)
            gzip_headers = {"Accept-Encoding": "gzip"}
            started = time.perf_counter()
            first = client.get("/v1/bundle", headers=gzip_headers)
            first_ms = (time.perf_counter() - started) * 1000
            repeat_ms = timed(lambda: client.get("/v1/bundle", headers=gzip_headers), args.requests)
            unchanged = {**gzip_headers, "If-None-Match": first.headers["ETag"]}
            not_modified_ms = timed(lambda: client.get("/v1/bundle", headers=unchanged), args.requests)
            plain = len(bundles.current().body)
            results[size] = repeat_ms, not_modified_ms
            print(f"{size:>6} documents: {plain / 1e6:.1f} MB, gzip {len(first.data) / 1e6:.2f} MB | build "
                  f"{build_ms:.0f} ms, first gzip request {first_ms:.0f} ms, repeat {repeat_ms:.2f} ms, "
                  f"304 {not_modified_ms:.2f} ms", flush=True)
    small, large = results[sizes[0]], results[sizes[-1]]
    print(f"ratio {sizes[-1]}/{sizes[0]}: repeat request {large[0] / small[0]:.2f}, 304 {large[1] / small[1]:.2f}")


if __name__ == "__main__":
    main()
