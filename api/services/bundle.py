"""The offline bundle: every published document in one body, with the feed cursor it matches. No Flask here.

A bundle is a set of files beside the read model's file, shared by every process serving the
store: the body, and the same bytes gzip- and brotli-compressed, made in one pass over the
model's published rows a batch at a time, so no process ever holds a whole body in memory. The
cursor is the last publication change the bundle reflects, so every process serving the same
published set answers with the same bytes and the same ETag, and a client following /v1/feed from
that cursor misses nothing and replays nothing the bundle already holds.

A request never builds a bundle itself: when the published set has moved past the newest bundle,
it starts a build in the background and waits for it a moment; a large set keeps being served its
previous bundle, which is still correct by the contract (the client follows the feed from its
cursor) until the new one is complete.
"""
import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import re
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import brotli
import orjson

from schemas import DOCUMENT_TYPES

from api.knowledge.jsontext import script_safe
from api.services.errors import NotReady
from api.store.files import removed_on_failure
from api.store.readmodel import published_snapshot

FOLDER = "bundle"  # beside the read model's file
ENCODINGS = (None, "gzip", "br")  # None: the body as is
_SUFFIXES = {None: ".json", "gzip": ".json.gz", "br": ".json.br"}
# <cursor>-<which publication that cursor is>.json: after a store is restored from a backup, a
# cursor number can name a different published set, and the bundle of the old one must not match.
_COMPLETE = re.compile(r"(\d+)-([0-9a-f]{16})\.json")
_LOCK = "build.lock"
_TEMPORARY = ".tmp"
CHUNK_BYTES = 64 * 1024  # what is buffered between the rows read and the three files written
GZIP_LEVEL, BROTLI_QUALITY = 6, 5  # as the rest of the API compresses (api/web/caching.py)

# How long a request waits for a build it started: a small set is served fresh; a large one
# is served its previous bundle rather than hold the worker.
FRESH_WAIT_S = 1.0
# With no bundle at all there is nothing correct to serve meanwhile: wait longer, then answer 503.
FIRST_BUILD_WAIT_S = 5.0
RETRY_AFTER_S = 5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bundle:
    folder: Path
    cursor: int
    publication: str  # a digest of the publication change at `cursor`

    @property
    def etag(self):
        # With the publication, not the cursor alone: a store reset or restored from a backup reaches
        # the same cursor with other content, and a client's If-None-Match must not keep the old one.
        return f"bundle-{self.cursor}-{self.publication}"

    @property
    def stem(self):
        return f"{self.cursor}-{self.publication}"

    def path(self, encoding=None):
        return self.folder / f"{self.stem}{_SUFFIXES[encoding]}"

    def paths(self):
        # The plain body last: its name is what says a bundle is complete (see BundleFiles.write).
        return [self.path(encoding) for encoding in reversed(ENCODINGS)]


def _publication_digest(meta):
    return hashlib.sha256(str(meta.get("published_tip", "")).encode()).hexdigest()[:16]


class BundleFiles:
    """The bundle files of one read model file (a store.modelfile.ModelFile), in `folder` (by
    default beside the model file)."""

    def __init__(self, model_file, folder=None):
        self.model_file = model_file
        self.folder = Path(folder or Path(model_file.path).parent / FOLDER)

    def complete(self):
        """The complete bundles, oldest first: a listing of a folder that holds one or two."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        found = (_COMPLETE.fullmatch(name) for name in names)
        return sorted((Bundle(self.folder, int(match[1]), match[2]) for match in found if match),
                      key=lambda bundle: bundle.cursor)

    def newest(self):
        complete = self.complete()
        return complete[-1] if complete else None

    def build(self, wait=True, snapshot=published_snapshot):
        """The bundle of the model's published set as it is now, written unless it exists already;
        then every other bundle is removed. One builder at a time per folder, across processes:
        with wait=False, returns None at once when another holds the lock. snapshot(model_file)
        gives (meta, count, documents(type_name)) as of one moment (store.readmodel)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / _LOCK, "ab") as lock:  # never written: only its flock matters
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return None
            # Under the lock nobody else is writing: any temporary file is a dead builder's.
            for name in os.listdir(self.folder):
                if name.endswith(_TEMPORARY):
                    os.unlink(self.folder / name)
            with snapshot(self.model_file) as (meta, count, documents):
                bundle = Bundle(self.folder, meta.get("published_seq", 0), _publication_digest(meta))
                if not bundle.path().exists():
                    self.write(bundle, count, documents)
            # The bundle just made or found is of the newest published set: the others go. A
            # worker streaming one of them keeps its open file; Linux frees it when it is closed.
            for older in self.complete():
                if older != bundle:
                    for path in older.paths()[::-1]:  # the plain body first: it is what marks it complete
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
            return bundle

    def write(self, bundle, count, documents):
        """Write `bundle`'s three files in one pass over documents(type_name), each to a temporary
        name, renamed only once all three are complete and on disk."""
        final = bundle.paths()
        temporaries = [path.with_name(f".{path.name}{_TEMPORARY}") for path in final]
        gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip stream, mtime 0, no name
        br = brotli.Compressor(quality=BROTLI_QUALITY)
        with contextlib.ExitStack() as cleanup:  # a failed build leaves none of its temporaries
            for temporary in temporaries:
                cleanup.enter_context(removed_on_failure(temporary))
            with contextlib.ExitStack() as files:
                br_file, gzip_file, plain_file = (files.enter_context(open(path, "wb")) for path in temporaries)
                # Both compressors release the GIL: brotli runs beside gzip (a second off 100,000 documents).
                brotli_thread = files.enter_context(ThreadPoolExecutor(1))

                def emit(chunk):
                    compressed = brotli_thread.submit(br.process, chunk)
                    plain_file.write(chunk)
                    gzip_file.write(gzip.compress(chunk))
                    br_file.write(compressed.result())

                head = orjson.dumps({"cursor": str(bundle.cursor), "count": count})[:-1] + b',"documents":['
                # script_safe per document, not per response: the escaping is byte-local, and the
                # compressed files are made from the escaped bytes too.
                buffer, written = bytearray(head), 0
                for type_name in DOCUMENT_TYPES:
                    for document in documents(type_name):
                        if written:
                            buffer += b","
                        buffer += script_safe(document.body)
                        written += 1
                        if len(buffer) >= CHUNK_BYTES:
                            emit(bytes(buffer))
                            buffer.clear()
                if written != count:  # a count that disagrees with the rows would make a lying head
                    raise OSError(errno.EIO, f"{written} published rows, but the model counts {count}; delete "
                                  "the file to have it rebuilt", str(self.model_file.path))
                emit(bytes(buffer + b"]}"))
                gzip_file.write(gzip.flush())
                br_file.write(br.finish())
                for file in (br_file, gzip_file, plain_file):
                    file.flush()
                    os.fsync(file.fileno())
            for temporary, path in zip(temporaries, final):
                os.replace(temporary, path)


def prepare(model_file):
    """Build the bundle of the model's published set unless it is built already: by `medkb import`
    and `medkb serve`, after the read model, so the first request finds it. When it is up to date
    this reads the model's meta and lists the bundle folder, nothing more."""
    BundleFiles(model_file).build()


class Bundles:
    """What a worker serves: the newest complete bundle, kept up with its read model (refresh the
    model first). The build runs in a daemon thread of the worker: it holds only the bundle lock
    and a read transaction of the model file, neither of which a request needs, and the request
    that started it waits for it a bounded time."""

    def __init__(self, model):
        self.model = model
        self.files = BundleFiles(model.file)
        self._lock = threading.Lock()
        self._build_done = None  # the Event of the build thread running, if any
        self._build_started = 0.0
        self._served = None  # the bundle last found for the model's version

    def current(self):
        """The bundle to serve now; NotReady when there is none yet and its build takes long."""
        version = self.model.version
        served = self._served
        if served is not None and served.cursor == version:
            return served
        newest = self.files.newest()
        if newest is None or newest.cursor != version:
            done, started = self._start_build()
            # Waited for from the build's start, not per request: while a long build runs, the
            # requests after its first second are served the previous bundle at once.
            patience = FRESH_WAIT_S if newest is not None else FIRST_BUILD_WAIT_S
            done.wait(max(0.0, started + patience - time.monotonic()))
            newest = self.files.newest()
            if newest is None:
                raise NotReady("The bundle is being built; try again shortly.", RETRY_AFTER_S)
        if newest.cursor == version:
            self._served = newest
        return newest

    def is_current(self, bundle):
        """Whether `bundle` is of the published set the model holds now (not the previous one)."""
        return bundle.cursor == self.model.version

    def open(self, bundle, encoding=None):
        """(bundle, its file in `encoding`, open for reading). A newer bundle's build may remove the
        files of `bundle` between current() and here: then the newest is opened instead."""
        for _ in range(3):
            try:
                return bundle, open(bundle.path(encoding), "rb")
            except FileNotFoundError:
                self._served = None
                bundle = self.current()
        raise NotReady("The bundle is being replaced; try again shortly.", RETRY_AFTER_S)

    def _start_build(self):
        with self._lock:
            if self._build_done is None or self._build_done.is_set():
                self._build_done, self._build_started = threading.Event(), time.monotonic()
                threading.Thread(target=self._build, args=(self._build_done,), name="medkb-bundle",
                                 daemon=True).start()
            return self._build_done, self._build_started

    def _build(self, done):
        try:
            self.files.build()
        except Exception:  # a thread's failure reaches no caller: say it here, serve the previous bundle
            log.exception("building the bundle in %s failed", self.files.folder)
        finally:
            done.set()
