"""What building the derived files costs per document: the read model (a fresh modelfile) and
the search index (a fresh generation), over a store that `medkb import` filled.

    python bench/build.py [--sizes 10000 100000] [--store DIR] [--baseline main] [--repeat 3]

For each size it writes a content set (bench/scale.py's), imports it into a store (or uses
--store, whose documents are counted), then times, into fresh files next to nothing in use:

  build   ModelFile.open on a missing file (what the first `medkb serve` or `medkb import` does)
  fill    search rebuild into a new folder (what `medkb import` does on a store with no index)

both with this checkout's code and with the code at --baseline (a git ref, extracted with
`git archive`), alternating, in the same run on the same store; the best of --repeat runs of
each, as ms per document, and the ratio baseline / now.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run by a child Python whose sys.path starts at one code tree: prints "build_s fill_s documents".
_MEASURE = """
import shutil, sys, tempfile, time
from pathlib import Path
from api.knowledge.documents import references
from api.services import search
from api.store import open_store
from api.store.modelfile import ModelFile
from api.store.searchindex import SearchFiles

store = open_store(Path(sys.argv[1]), None)
documents = sum(1 for _ in store.keys())
scratch = Path(tempfile.mkdtemp(prefix="bench-build-"))
try:
    model = ModelFile(scratch / "readmodel.sqlite", references)
    started = time.perf_counter()
    model.open(store)
    build = time.perf_counter() - started
    model.close()
    started = time.perf_counter()
    search.rebuild(store, SearchFiles(scratch / "search", search.FIELDS))
    fill = time.perf_counter() - started
finally:
    shutil.rmtree(scratch, ignore_errors=True)
print(build, fill, documents)
"""


def measure(code, store):
    result = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(code)!r})\n{_MEASURE}",
                             str(store)], cwd=code, capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"measuring {code} failed:\n{result.stderr}")
    build, fill, documents = result.stdout.split()
    return float(build), float(fill), int(documents)


def checkout(ref, into):
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
    into.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def imported_store(size, scratch):
    sys.path.insert(0, str(ROOT))
    from bench.scale import write_content

    content, store = scratch / f"content-{size}", scratch / f"store-{size}"
    write_content(content, size)
    subprocess.run([sys.executable, "-m", "api.cli", "import", str(content)], cwd=ROOT, check=True,
                   env={**os.environ, "MEDKB_DB": str(store)}, capture_output=True, timeout=7200)
    return store


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--store", type=Path, help="an imported store to measure instead of building one per size")
    parser.add_argument("--baseline", default="main", help="git ref of the code to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        baseline = checkout(args.baseline, scratch / "baseline")
        stores = [args.store] if args.store else [imported_store(size, scratch) for size in args.sizes]
        print(f"{'documents':>10} {'':9} {'build ms/doc':>13} {'fill ms/doc':>12}")
        for store in stores:
            best = {"before": [float("inf")] * 2, "after": [float("inf")] * 2}
            for _ in range(args.repeat):
                for name, code in (("before", baseline), ("after", ROOT)):
                    build, fill, documents = measure(code, store)
                    best[name] = [min(best[name][0], build), min(best[name][1], fill)]
            for name in ("before", "after"):
                build, fill = (seconds / documents * 1000 for seconds in best[name])
                print(f"{documents:>10} {name + ' (' + (args.baseline if name == 'before' else 'now') + ')':9} "
                      f"{build:13.3f} {fill:12.3f}")
            print(f"{documents:>10} {'ratio':9} {best['before'][0] / best['after'][0]:12.1f}x "
                  f"{best['before'][1] / best['after'][1]:11.1f}x")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
