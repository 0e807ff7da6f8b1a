"""The search index's files: a tantivy index under `<store>/search/`, shared by every process.

Persistence only: callers name the text fields and hand over rows; what a row means is theirs.
Layout:

    search/current              the name of the generation in use (replaced atomically)
    search/<generation>/        a tantivy index; one row per entry, plus one metadata row
    search/<generation>/terms   every term ever indexed there, one per line, append-only
    search/write.lock           one writer at a time across processes

The metadata row (the caller's: which store, which changes applied) is committed in the same
tantivy commit as the rows it describes: whatever a crash leaves, what it records matches the
rows. A rebuild writes a new generation and then switches `current`, so readers never
see a half-built index; processes still reading the old one move over when they next catch up.
"""
import contextlib
import hashlib
import os
import shutil
import time
import uuid
from pathlib import Path

import orjson
import tantivy
from filelock import FileLock

from api.store.files import append, atomic_write, fsync_directory
from api.store.records import StorageUnavailable

KEY, KIND, PAYLOAD = "key", "kind", "payload"  # the row's key, its kind (for filters), what it shows
HIDDEN = "hidden"  # the views a row is left out of (for filters)
META_KEY = "~meta"  # no entry key starts with "~"
WRITER_HEAP = 64_000_000
LOCK_TIMEOUT = 60  # seconds; a rebuild holds the lock while it writes a whole generation
RELOAD_ATTEMPTS = 5


class SearchIndexUnavailable(StorageUnavailable):
    """The index is missing, or was built for another store: `medkb search rebuild` makes it.
    Answered as the store being unavailable (503): a request never builds the whole index."""

    def __init__(self, message):
        Exception.__init__(self, message)
        self.error = None


def store_identity(layout):
    """What tells one store from another: a hash of its first change's record (who, what, when),
    as bytes, unparsed, so that nothing but that line is read. None while the store is empty."""
    try:
        with open(layout.change_log(1), "rb") as handle:
            first = handle.readline()
    except FileNotFoundError:
        return None
    return hashlib.sha256(first).hexdigest()[:32] if first.endswith(b"\n") else None


def schema(text_fields):
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(KEY, tokenizer_name="raw", index_option="basic")
    builder.add_text_field(KIND, tokenizer_name="raw", index_option="basic")
    builder.add_text_field(HIDDEN, tokenizer_name="raw", index_option="basic")
    builder.add_bytes_field(PAYLOAD, stored=True, indexed=False)
    for name in text_fields:
        # Callers hand over text already split into folded terms, joined by spaces.
        builder.add_text_field(name, tokenizer_name="whitespace", index_option="freq")
    return builder.build()


def row_document(key, kind, payload: bytes, texts, hidden=()):
    document = tantivy.Document()
    document.add_text(KEY, key)
    document.add_text(KIND, kind)
    for view in hidden:
        document.add_text(HIDDEN, view)
    document.add_bytes(PAYLOAD, payload)
    for name, text in texts.items():
        if text:
            document.add_text(name, text)
    return document


class Rows:
    """What a writer adds: rows under a key, and the terms they hold."""

    def __init__(self, writer, terms):
        self._writer = writer
        self._terms = terms

    def remove(self, key):
        self._writer.delete_documents_by_term(KEY, key)

    def add(self, key, kind, payload, texts, terms, hidden=()):
        self._writer.add_document(row_document(key, kind, payload, texts, hidden))
        self._terms.update(terms)


class Generation:
    """One built index, opened for reading."""

    def __init__(self, folder: Path, schema_):
        self.folder = folder
        self.schema = schema_
        try:
            self.index = tantivy.Index.open(str(folder))
        except ValueError as error:  # tantivy's word for a missing or unreadable index
            raise SearchIndexUnavailable(f"{folder}: {error}; run `medkb search rebuild`.") from None
        self.terms_path = folder / "terms"

    def reload(self):
        # Another process's writer may delete segment files between our reading meta.json and
        # opening them; the next reading names only live ones.
        for attempt in range(RELOAD_ATTEMPTS):
            try:
                self.index.reload()
                return
            except ValueError:
                if attempt == RELOAD_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))

    def searcher(self):
        return self.index.searcher()

    def meta(self, searcher=None):
        """What the last commit recorded about itself (a dict), or None."""
        searcher = searcher or self.searcher()
        hits = searcher.search(tantivy.Query.term_query(self.schema, KEY, META_KEY), 1).hits
        return orjson.loads(searcher.doc(hits[0][1])[PAYLOAD][0]) if hits else None

    def terms_after(self, offset):
        """(new terms, new offset): complete lines appended since `offset`."""
        try:
            with open(self.terms_path, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        return data[:end].decode().split("\n")[:-1], offset + end


def _commit(writer, meta):
    writer.delete_documents_by_term(KEY, META_KEY)
    writer.add_document(row_document(META_KEY, META_KEY, orjson.dumps(meta), {}))
    writer.commit()
    writer.wait_merging_threads()


class SearchFiles:
    def __init__(self, folder, text_fields):
        self.folder = Path(folder)
        self.text_fields = tuple(text_fields)
        self.schema = schema(self.text_fields)
        self._lock = FileLock(str(self.folder / "write.lock"), timeout=LOCK_TIMEOUT)

    def current_name(self):
        try:
            return (self.folder / "current").read_text().strip() or None
        except FileNotFoundError:
            return None

    def open(self):
        """The generation in use, or None when none was built."""
        name = self.current_name()
        return Generation(self.folder / name, self.schema) if name else None

    @contextlib.contextmanager
    def locked(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            yield

    def apply(self, generation, meta, change):
        """Under the writer lock (the caller holds `locked()`): `change(rows)` removes and adds rows,
        and the metadata row becomes `meta`, in one commit."""
        terms = set()
        writer = generation.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        try:
            change(Rows(writer, terms))
            # Terms first: a term whose rows did not commit only costs a lookup that finds nothing.
            if terms:
                append(generation.terms_path, "".join(f"{term}\n" for term in sorted(terms)).encode())
            _commit(writer, meta)
        except BaseException:
            writer.rollback()
            raise

    def build(self, meta, fill):
        """A new generation holding what `fill(rows)` adds, with metadata `meta`, then made
        current. The caller holds `locked()`."""
        name = f"g{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
        folder = self.folder / name
        folder.mkdir(parents=True)
        try:
            index = tantivy.Index(self.schema, path=str(folder))
            writer = index.writer(heap_size=4 * WRITER_HEAP, num_threads=1)
            terms = set()
            fill(Rows(writer, terms))
            (folder / "terms").write_text("".join(f"{term}\n" for term in sorted(terms)))
            _commit(writer, meta)
            for path in folder.iterdir():
                if path.is_file():
                    with open(path, "rb") as handle:
                        os.fsync(handle.fileno())
            fsync_directory(folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        atomic_write(self.folder / "current", name.encode())
        # Processes reading an old generation keep its open files (POSIX) until they move over.
        for path in self.folder.iterdir():
            if path.is_dir() and path.name != name:
                shutil.rmtree(path, ignore_errors=True)
        return Generation(folder, self.schema)
