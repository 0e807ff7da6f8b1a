"""Whole-set checks (import, validate) spread over the machine's cores.

Checking a document is pure CPU work in Python (the schemas are marshmallow), so threads do not
help; forked processes do, and they inherit the set already in memory, so only each item and its
result cross between processes.
"""
import contextlib
import gc
import multiprocessing
import os

# Below this many items, starting processes costs more than it saves (and small runs, like the
# tests', stay in one process).
MIN_PARALLEL_ITEMS = 2000
CHUNK = 64  # items sent to a worker at a time, at most: fewer when there are few items (below)

_task = None  # the function the forked workers run: set before the fork, so they inherit it


@contextlib.contextmanager
def without_cycle_collection():
    """For a command that holds a whole set in memory: millions of parsed-JSON objects, none in a
    reference cycle. The cycle collector would traverse them again and again as they accumulate,
    in this process and in every process forked from it, and find nothing to free (5-13 s of the
    checks and lint at 100,000 documents, in two pairs of runs). Reference counting still frees
    everything they hold."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(item):
    return _task(item)


class Background:
    """function(), run from now on in a forked process (inheriting what is in memory, like
    fork_map's workers, and ended with this one); result() waits for what it returns."""

    def __init__(self, function):
        context = multiprocessing.get_context("fork")
        self._answer, sending = context.Pipe(duplex=False)
        self._process = context.Process(target=lambda: sending.send(function()), daemon=True)
        self._process.start()
        sending.close()

    def result(self):
        """function()'s return value; ChildProcessError when the process ended without one."""
        try:
            return self._answer.recv()
        except EOFError:
            raise ChildProcessError(f"ended with exit code {self._process.exitcode}") from None
        finally:
            self._process.join()

    def cancel(self):
        self._process.terminate()
        self._process.join()


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def fork_map(function, items, *, processes=None, progress=None):
    """[function(item) for item in items], in order, in forked processes when that pays.

    `function` may be a closure over anything in memory: the workers are forked after it is
    set, never pickled. `processes`: None chooses (every core, for large enough sets); 1 runs
    here. progress(done, total) is called with 0 done at the start, then as results arrive."""
    global _task
    items = list(items)
    if progress:
        progress(0, len(items))
    if processes is None:
        processes = cores() if len(items) >= MIN_PARALLEL_ITEMS else 1
    processes = max(1, min(processes, len(items)))
    results = []
    if processes <= 1:
        for item in items:
            results.append(function(item))
            if progress and len(results) % CHUNK == 0:
                progress(len(results), len(items))
    else:
        _task = function
        # A chunk is run by one worker, item after item: a chunk as large as the whole list (a few
        # long tasks, like the derived files' builds) would leave the other workers idle.
        chunk = max(1, min(CHUNK, len(items) // (processes * 4)))
        try:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                for result in pool.imap(_run, items, chunk):
                    results.append(result)
                    if progress and len(results) % CHUNK == 0:
                        progress(len(results), len(items))
        finally:
            _task = None
    if progress:
        progress(len(items), len(items))
    return results
