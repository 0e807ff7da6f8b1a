"""The `medkb` command line. Errors are one line each (file, field, message), never a traceback."""
import logging
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import orjson

from api.app import DEFAULT_STORE, create_app
from api.knowledge.documents import (DocumentFileError, InvalidDocument, canonical_bytes, content_path, json_files,
                                     load_document, load_set, read_document_file, references)
from api.knowledge.jsonschema import document_json_schemas
from api.knowledge.parallel import Background, fork_map, without_cycle_collection
from api.services.documents import Documents
from api.services.lint import lint_set
from api.services import bundle as bundle_service, search as search_service
from api.services.webhooks import InvalidSubscription, Settings, SubscriptionNotFound, Webhooks
from api.services.workflow import Editorial, Scheduler
from api.store import open_store as store_at
from api.store.files import atomic_write
from api.store.keys import ROLES, KeyStoreError
from api.store.modelfile import ModelFile, default_path
from api.store.storage import StoreCorrupt
from api.store.store import StoreError
from api.web.metrics import SCHEDULED_PUBLISHES, count_into, webhook_attempted


def fail(message):
    click.echo(message, err=True)
    sys.exit(1)


def store_path():
    return Path(os.environ.get("MEDKB_DB") or DEFAULT_STORE)


def database_url():
    return os.environ.get("MEDKB_DATABASE_URL") or None


def open_store():
    return store_at(store_path(), database_url())


def prepare_read_model(store):
    """Build the read model file if it is missing or stale, and apply what the store committed
    since, then the bundle of its published set: done here, once (by `medkb import` and
    `medkb serve`), so that no worker and no request has to."""
    model = ModelFile(default_path(store), references)

    def announce(reason):
        if reason != "missing":  # a first build is expected; a rebuild says why
            click.echo(f"rebuilding the read model {model.path}: {reason}", err=True)

    model.open(store, announce)
    bundle_service.prepare(model)  # needs the model caught up; a bundle already up to date costs a listing
    model.close()


def prepare_derived(done="", model_beside=None):
    """Fit the read model and the search index to the store before anyone reads: side by side,
    since each reads every document when it is built from scratch. `done`: what the command has
    already committed, said before a failure here, which leaves the store as it is.
    `model_beside`: the ModelBesideImport that is building the read model already."""
    preparations = [SEARCH_INDEX] if model_beside else [READ_MODEL, SEARCH_INDEX]
    failures = fork_map(_prepare_on_own_store, preparations, processes=2)
    if model_beside:
        failures.insert(0, model_beside.result())
    failures = [message for message in failures if message]
    if failures:
        fail("\n".join(([done] if done else []) + failures))


READ_MODEL = (prepare_read_model, "the read model (readmodel.sqlite)")
SEARCH_INDEX = (search_service.prepare, "the search index (search/)")


class ModelBesideImport:
    """The read model, built in a forked process while `medkb import` fills an empty store
    (ModelFile.build_following) rather than after it, then given its bundle, as
    prepare_read_model does. At 100,000 documents the commits and this build take about as long
    each, and the commits leave a core free. Should the build give up, or its process die,
    prepare_read_model builds the model from the whole store."""

    def __init__(self):
        self._importer = os.getpid()
        self._imported = multiprocessing.get_context("fork").Value("b", 0, lock=False)  # shared with the fork
        self._task = Background(lambda: _prepare_on_own_store((self._prepare, READ_MODEL[1])))

    def _import_status(self):
        if self._imported.value:
            return True
        return None if os.getppid() == self._importer else False  # an importer killed says nothing

    def _prepare(self, store):
        model = ModelFile(default_path(store), references)
        try:
            model.build_following(store, self._import_status)
        finally:
            model.close()
        if self._import_status():  # the import is over, not its process killed
            prepare_read_model(store)  # the bundle; and the whole build, had that one given up

    def finish(self):
        """Tell the build the import is over: everything it committed is there to apply."""
        self._imported.value = 1

    def cancel(self):
        """The import failed: the build's uncommitted transaction goes with its process."""
        self._task.cancel()

    def result(self):
        """What prepare_derived reports: None, or the one-line failure."""
        try:
            return self._task.result()
        except ChildProcessError:
            return _prepare_on_own_store(READ_MODEL)


NEARLY_FULL = 1 << 20  # bytes free: less, and SQLite cannot even make the journal files a database needs


def _prepare_on_own_store(preparation):
    """prepare(store) on a store opened here, as a process forked for it must: it may not share
    the parent's open files and connections. The one-line message of a failure, or None.
    `preparation`: (prepare, what it makes)."""
    prepare, what = preparation
    store = None
    try:
        store = open_store()
        prepare(store)
    except REPORTED as error:  # sent back as text: these exceptions do not all survive pickling
        return one_line(error)
    except sqlite3.Error as error:
        where = store.location if store is not None else store_path()
        if shutil.disk_usage(store_path()).free < NEARLY_FULL:  # SQLite says "disk I/O error" for that too
            return (f"{where}: {what} cannot be written ({one_line(error)}): the disk holding "
                    f"{store_path()} is full. Make room there and run this command again.")
        return (f"{where}: {what} cannot be used ({one_line(error)}). It is derived from the "
                f"store, which is unaffected: move it aside and run this command again to build it afresh.")
    return None


class Progress:
    """Progress on standard error for long runs: a live counter on a terminal, a line per 10% otherwise."""

    MINIMUM = 200  # items: a smaller run is over before anyone looks

    def __init__(self, label, minimum=MINIMUM):
        self.label, self.minimum, self.last_decile = label, minimum, -1
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()

    def __call__(self, done, total):
        if done == 0:  # the stage starts now: load_set is given both of its stages' at once
            self.started = time.monotonic()
            return
        if total < self.minimum:
            return
        line = f"{self.label} {done}/{total} ({time.monotonic() - self.started:.0f} s)"
        if self.tty:
            click.echo(f"\r{line}", err=True, nl=done == total)
        elif done * 10 // total > self.last_decile:
            self.last_decile = done * 10 // total
            click.echo(line, err=True)


REPORTED = (StoreCorrupt, StoreError, InvalidDocument, OSError)  # what a command reports in one line


def one_line(error):
    if isinstance(error, OSError):  # a full disk, a read-only folder: one line, never a traceback
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return str(error)


class GivenPath(click.Path):
    """click.Path without the empty name, which Path() reads as the current folder: `export --out ""`
    wrote the documents wherever the command ran."""

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path names no file or folder.", param, ctx)
        return super().convert(value, param, ctx)


class Seconds(click.FloatRange):
    """A bounded number of seconds that is a number: NaN passes FloatRange, comparing false with both bounds."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number of seconds.", param, ctx)
        return number


class OneLineLog(logging.Formatter):
    """What the store logs while a command runs (a derived file it could not update), as one
    line with its cause: the command line shows no tracebacks."""

    def format(self, record):
        error = record.exc_info[1] if record.exc_info else None
        return record.getMessage() + (f" ({one_line(error)})" if error is not None else "")


class Commands(click.Group):
    def invoke(self, ctx):
        if not logging.getLogger("api").handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(OneLineLog())
            logging.getLogger("api").addHandler(handler)
        try:
            return super().invoke(ctx)
        except REPORTED as error:
            fail(one_line(error))


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """medkb: the medication knowledge base and its API.

    The store lives in the folder named by MEDKB_DB (default var/medkb), or, with
    MEDKB_DATABASE_URL=postgresql://..., in that database (MEDKB_DB is then this node's own folder).
    """


@main.command()
@click.argument("paths", nargs=-1, type=GivenPath(path_type=Path))
@without_cycle_collection()
def validate(paths):
    """Check documents (files or folders, default content/): schemas, references, file names."""
    paths = paths or (Path("content"),)
    missing = [p for p in paths if not p.exists()]
    if missing:
        fail("\n".join(f"{p}: no such file or folder" for p in missing))
    loaded = load_set(paths, progress=Progress("checking"), set_progress=Progress("cross-checking"))
    for problem in loaded.problems:
        click.echo(str(problem))
    if loaded.problems:
        click.echo(f"{len(loaded.problems)} problem(s) in {loaded.files_seen} file(s).", err=True)
        sys.exit(1)
    if not loaded.documents:
        fail(f"{', '.join(map(str, paths))}: no JSON documents found")
    click.echo(f"{len(loaded.documents)} valid documents.")


@main.command()
@click.argument("paths", nargs=-1, type=GivenPath(path_type=Path))
def migrate(paths):
    """Rewrite older-format documents in place in the current format."""
    paths = paths or (Path("content"),)
    migrated, problems = 0, []
    for path in json_files(paths):
        try:
            raw = read_document_file(path)
        except DocumentFileError as error:
            problems.append(f"{path}: {error}")
            continue
        document, errors = load_document(raw)
        if errors:
            # An invalid file is left exactly as it was: a migration never writes a bad document.
            problems.extend(f"{path}: {field}: {message}" for field, message in errors)
        elif document is not raw:
            atomic_write(path, canonical_bytes(document))
            migrated += 1
            click.echo(f"{path}: migrated to schema_version {document['schema_version']}")
    for problem in problems:
        click.echo(problem)
    click.echo(f"{migrated} file(s) migrated.", err=True)
    sys.exit(1 if problems else 0)


@main.command()
@click.option("--out", type=GivenPath(path_type=Path), default=Path("schemas/json"), show_default=True)
def schema(out):
    """Write a JSON Schema per document type, for validation in editors."""
    out.mkdir(parents=True, exist_ok=True)
    for type_name, json_schema in document_json_schemas().items():
        target = out / f"{type_name}.schema.json"
        atomic_write(target, orjson.dumps(json_schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
        click.echo(str(target))


@main.command("import")
@click.argument("paths", nargs=-1, type=GivenPath(exists=True, path_type=Path))
@click.option("--if-empty", is_flag=True, help="Import only into a store that holds no changes yet (make run).")
@click.option("--force-revert", is_flag=True,
              help="Apply files even where the store has moved past their revision (the audit log says so).")
@without_cycle_collection()
def import_(paths, if_empty, force_revert):
    """Load documents (default content/) into the store and publish them.

    The store is the source of truth: a file whose document the store has moved past the
    file's `revision` (a newer revision, an unpublish, a draft, a deletion) is refused, one line
    each, and nothing of it applied; the command then exits 1. A file equal to the published
    revision changes nothing; a changed file exported from the published head adds one revision.
    Nothing is written unless every file to apply is valid.
    """
    paths = paths or (Path("content"),)
    store = open_store()
    if if_empty and store.last_seq():
        click.echo(f"{store.location} already holds {store.last_seq()} changes: not importing "
                   f"(the store is the source of truth; see `medkb export`).")
        return
    documents = Documents(store)
    # References the files do not resolve may be to documents the store holds: a folder of new
    # FAQs can be imported on its own.
    loaded = load_set(paths, progress=Progress("checking"), set_progress=Progress("cross-checking"),
                      lookup_outside=documents.lookup_head)
    for problem in loaded.problems:
        click.echo(str(problem))
    if loaded.problems:
        fail(f"{len(loaded.problems)} problem(s); nothing imported.")
    findings, with_errors = lint_set(loaded.documents, outside=loaded.outside, progress=Progress("linting"))
    # Import publishes what the files say (they are the editors' reviewed copy), but the audit
    # must show which documents it published with open lint errors, each on its own change.
    notes = {key: f"published with open lint errors: {key} ({', '.join(rules)})" for key, rules in with_errors.items()}
    model_beside = ModelBesideImport() if not store.last_seq() else None
    try:
        result = documents.import_(loaded.documents.values(), actor="import",
                                   message=f"import {' '.join(map(str, paths))}", notes=notes, force=force_revert,
                                   progress=Progress("importing"), loaded=loaded)
    except BaseException:
        if model_beside:
            model_beside.cancel()
        raise
    if model_beside:
        model_beside.finish()
    # Built here rather than by the first `medkb serve`: at 100,000 documents the first build
    # takes a while, and an import is the offline step, while a start must be ready in seconds.
    started = time.monotonic()
    prepare_derived(done=f"Imported: the store is at change {store.last_seq()}; but the files it serves from "
                         f"are not ready:", model_beside=model_beside)
    if len(loaded.documents) >= Progress.MINIMUM:
        click.echo(f"read model, search index and bundle ready ({time.monotonic() - started:.0f} s)", err=True)
    for refusal in result.refused:
        click.echo(f"{loaded.paths[refusal.key]}: {refusal}", err=True)
    for line in findings:
        click.echo(line, err=True)
    total = len(loaded.documents)
    summary = f"{total} documents: {len(result.written)} changed, {len(result.unchanged)} unchanged"
    if result.refused:
        summary += f", {len(result.refused)} refused"
    click.echo(f"{summary}; store at change {store.last_seq()}.")
    if result.refused:
        sys.exit(1)


@main.command()
@click.option("--out", type=GivenPath(file_okay=False, path_type=Path), default=Path("content"), show_default=True)
def export(out):
    """Write every published document to OUT in the canonical file form.

    Files of documents the store holds but does not publish (unpublished, deleted) are removed;
    files the store knows nothing of are left alone. Each document is written as it was published
    when the export listed it, whatever editors publish or unpublish meanwhile.
    """
    store = open_store()
    states = list(store.states())
    progress = Progress("exporting")
    written = removed = 0
    for done, state in enumerate(states, 1):
        target = content_path(out, {"type": state.type, "id": state.id})
        if state.published:
            # The revision the listing saw published, not whatever is published by now: revisions
            # never change, so a document unpublished meanwhile is still exported as listed.
            data = canonical_bytes(store.revision(state.type, state.id, state.published).content)
            if not target.exists() or target.read_bytes() != data:
                atomic_write(target, data)
                written += 1
        elif target.exists():
            target.unlink()
            removed += 1
        progress(done, len(states))
    click.echo(f"{sum(1 for s in states if s.published)} published documents in {out}: "
               f"{written} written, {removed} removed.")


@main.command()
@click.option("--repair", is_flag=True, help="Also rebuild the index file (indexes.sqlite) from the change log.")
def check(repair):
    """Verify every revision's hash, every pointer and the change sequence."""
    store = open_store()
    if repair:
        if store.read_only:
            fail(f"{store.location}: is on a read-only file system; nothing can be repaired there.")
        store.indexes.rebuild(store)
        click.echo(f"{store.indexes.path}: rebuilt from the change log.", err=True)
    problems = store.verify()
    try:
        if not store.read_only:  # the index file is derived: where it cannot be rebuilt, it is not checked
            store.indexes.applied_seq()
    except sqlite3.Error as error:
        problems.append(f"{store.indexes.path}: cannot be read ({error}); `medkb check --repair` rebuilds it "
                        f"from the change log.")
    for problem in problems:
        click.echo(problem)
    if problems:
        fail(f"{len(problems)} problem(s) in {store.location}.")
    states = list(store.states())
    click.echo(f"{store.location}: {len(states)} documents, {sum(s.head for s in states)} revisions, "
               f"change sequence at {store.last_seq()}: OK.")


def run_scheduler(stop, interval=1.0):
    """Publish what is due every `interval` seconds until `stop` is set."""
    scheduler = Scheduler(Editorial(open_store()))
    webhooks = webhook_service(scheduler.editorial.store, on_attempt=webhook_attempted)
    while not stop.is_set():
        for change in scheduler.tick():
            SCHEDULED_PUBLISHES.labels(change.type).inc()
            click.echo(f"published {change.type}/{change.id} revision {change.revision} (scheduled)", err=True)
        webhooks.tick()
        stop.wait(interval)
    webhooks.close()


def supervise_scheduler(stop):
    """Keep `run_scheduler` running beside the server until `stop` is set: a failure (a store
    briefly unreadable, say) is logged and retried rather than silently ending scheduled publishing."""
    import traceback

    while not stop.is_set():
        try:
            run_scheduler(stop)
        except Exception:  # noqa: BLE001 - anything, logged, then retried
            click.echo(f"scheduler failed, restarting in 5 s:\n{traceback.format_exc()}", err=True)
            stop.wait(5)


@main.command()
@click.option("--interval", default=1.0, show_default=True, type=Seconds(0.05, 3600))
@click.option("--once", is_flag=True, help="Publish what is due now, then exit.")
def worker(interval, once):
    """Publish scheduled documents when they fall due (`medkb serve` runs this itself)."""
    stop = threading.Event()
    if once:
        stop.set()
        changes = Editorial(open_store()).publish_due()
        click.echo(f"{len(changes)} scheduled publish(es) done.")
        return
    try:
        run_scheduler(stop, interval)
    except KeyboardInterrupt:
        stop.set()


@main.group()
def search():
    """The search index (<store>/search/), which `import` and `serve` keep fitting the store."""


@search.command("rebuild")
def search_rebuild():
    """Index every published document afresh, e.g. after restoring the store from a backup."""
    click.echo(f"search index rebuilt at change {search_service.rebuild(open_store())}.")


@main.group()
def keys():
    """API keys for the editorial API."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--name", required=True, help="Who the key is for; named in the audit log.")
def keys_create(role, name):
    """Create a key and print it, alone, on standard output. It is shown only this once."""
    try:
        key, secret = open_store().api_keys().create(role, name)
    except KeyStoreError as error:
        fail(f"keys create: {error}")
    click.echo(f"created key {key.id} for {key.name} ({key.role}); store it now, it is not shown again", err=True)
    click.echo(secret)


@keys.command("list")
def keys_list():
    """Every key: id, name, role, created, revoked."""
    for key in open_store().api_keys().list():
        click.echo(f"{key.id}\t{key.name}\t{key.role}\t{key.created_at}\t{key.revoked_at or '-'}")


@keys.command("revoke")
@click.argument("name_or_id")
def keys_revoke(name_or_id):
    """Revoke a key by name or id; it stops working at once."""
    try:
        key = open_store().api_keys().revoke(name_or_id)
    except KeyStoreError as error:
        fail(f"keys revoke: {error}")
    click.echo(f"revoked {key.id} ({key.name})")


def webhook_service(store=None, on_attempt=None):
    try:
        settings = Settings.from_env(os.environ)
    except ValueError as error:
        fail(str(error))
    return Webhooks(store or open_store(), settings, on_attempt)


@main.group()
def webhooks():
    """Webhook subscriptions: signed (Standard Webhooks) deliveries of publication changes."""


def webhook_call(call, *args):
    try:
        return call(*args)
    except (InvalidSubscription, SubscriptionNotFound) as error:
        fail(f"webhooks: {error}")


@webhooks.command("add")
@click.argument("url")
@click.option("--event", "events", multiple=True, help="publish, unpublish, delete, scheduled_publish (repeat; "
                                                       "default all)")
@click.option("--type", "types", multiple=True, help="Only documents of this type (repeat; default all).")
@click.option("--description", default="")
def webhooks_add(url, events, types, description):
    """Subscribe URL; prints the signing secret, alone, on standard output. It is shown only this once."""
    subscription = webhook_call(webhook_service().subscribe, url, events, types, description)
    click.echo(f"created webhook {subscription.id} for {subscription.url} ({', '.join(subscription.events)}); "
               "store the secret now, it is not shown again", err=True)
    click.echo(subscription.secret)


@webhooks.command("list")
def webhooks_list():
    """Every subscription: id, status, cursor, events, types, URL."""
    for subscription, state in webhook_service().list():
        click.echo(f"{subscription.id}\t{state.status}\t{state.cursor}\t{','.join(subscription.events)}\t"
                   f"{','.join(subscription.types) or '*'}\t{subscription.url}")


@webhooks.command("remove")
@click.argument("subscription_id")
def webhooks_remove(subscription_id):
    """Remove a subscription; nothing more is sent to it."""
    subscription = webhook_call(webhook_service().remove, subscription_id)
    click.echo(f"removed {subscription.id} ({subscription.url})")


@webhooks.command("test")
@click.argument("subscription_id")
def webhooks_test(subscription_id):
    """Send a signed test message now; exit 1 unless the receiver answers 2xx."""
    attempt = webhook_call(webhook_service().send_test, subscription_id)
    if not attempt.ok:
        fail(f"{subscription_id}: {attempt.error} after {attempt.latency_ms} ms")
    click.echo(f"{subscription_id}: HTTP {attempt.status} in {attempt.latency_ms} ms")


@webhooks.command("log")
@click.argument("subscription_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
def webhooks_log(subscription_id, limit):
    """Latest delivery attempts, newest first: time, delivery id, event, status, latency, error."""
    for entry in webhook_call(webhook_service().log, subscription_id, limit):
        document = f"{entry['type']}/{entry['id']}" if "type" in entry else "-"
        click.echo(f"{entry['at']}\t{entry['delivery_id']}\t{entry['event']}\t{document}\t"
                   f"{entry['status'] or '-'}\t{entry['latency_ms']} ms\t{entry['error'] or 'ok'}")


@webhooks.command("replay")
@click.argument("subscription_id")
@click.option("--since", type=click.IntRange(0), help="Deliver again every change after this feed cursor.")
@click.option("--delivery", "delivery", help="Send this one delivery (its webhook-id, msg_...) again.")
def webhooks_replay(subscription_id, since, delivery):
    """Replay from a cursor or one delivery by id; with neither, resume a failing subscription."""
    service = webhook_service()
    if delivery is not None and since is not None:
        fail("webhooks replay: give --since or --delivery, not both")
    if delivery is not None:  # "" is not a delivery, and not a request to resume either
        webhook_call(service.replay_delivery, subscription_id, delivery)
        click.echo(f"{subscription_id}: {delivery} queued; the worker sends it")
    else:
        state = webhook_call(service.replay_from, subscription_id, since)
        click.echo(f"{subscription_id}: delivering after change {state.cursor}")


@main.group()
def db():
    """The PostgreSQL schema of MEDKB_DATABASE_URL (the file store needs none of this)."""


def required_database_url():
    url = database_url()
    if not url:
        fail("MEDKB_DATABASE_URL is not set: name the database, e.g. postgresql://medkb@db.example.org/medkb")
    return url


@db.command("init")
def db_init():
    """Create the database if it does not exist, and its schema; running it again changes nothing."""
    from api.store.postgres import create_database, describe, migrate

    url = required_database_url()
    if create_database(url):
        click.echo(f"{describe(url)}: database created", err=True)
    before, applied = migrate(url)
    version = applied[-1][0] if applied else before
    click.echo(f"{describe(url)}: schema at version {version}" + (" (already)" if not applied else ""))


@db.command("migrate")
def db_migrate():
    """Apply the schema migrations the database has not had, in one transaction."""
    from api.store.postgres import describe, migrate

    url = required_database_url()
    before, applied = migrate(url)
    for version, name in applied:
        click.echo(f"applied migration {version:04d} {name}", err=True)
    version = applied[-1][0] if applied else before
    click.echo(f"{describe(url)}: schema at version {version}" + ("" if applied else ", nothing to do"))


@db.command("copy-store")
@click.argument("folder", type=GivenPath(exists=True, file_okay=False, path_type=Path))
def db_copy_store(folder):
    """Copy a file store (FOLDER) into the empty database, with all its history and numbers.

    Unlike export and import, every revision, audit entry and change number comes along, so feed
    and webhook cursors and ETags stay valid. `medkb check` runs on the result. API keys and
    webhook subscriptions are not copied: the command names how many stay behind."""
    from api.store.postgres import PostgresStore

    # The database first, and the folder only if it is a store already: opening a folder as a
    # store would create one there, in a command that then fails.
    target = store_at(store_path(), required_database_url())
    if not isinstance(target, PostgresStore):
        fail("db copy-store: MEDKB_DATABASE_URL must name the PostgreSQL database to copy into")
    if not (folder / "head.json").is_file():
        fail(f"{folder}: not a medkb file store (it has no head.json); nothing was copied.")
    source = store_at(folder)
    documents, changes = target.copy_from(source, progress=Progress("copying"))
    problems = target.verify()
    for problem in problems:
        click.echo(problem)
    if problems:
        fail(f"{len(problems)} problem(s) in {target.location} after the copy.")
    click.echo(f"{target.location}: {documents} documents and {changes} changes copied from {folder}: OK.")
    # Keys and subscriptions hold secrets and delivery state of their own, which this does not move.
    keys, subscriptions = len(source.api_keys().list()), len(source.webhook_subscriptions().list())
    if keys or subscriptions:
        click.echo(f"Not copied: {keys} API key(s) and {subscriptions} webhook subscription(s), which stay in "
                   f"{folder}. Create them on the database with `medkb keys create` and `medkb webhooks add` "
                   f"before the new nodes take traffic.", err=True)


def openapi_yaml():
    """The OpenAPI document, as generated from the code. Needs no store: it opens an empty one."""


    with tempfile.TemporaryDirectory() as scratch:
        app = create_app({"MEDKB_DB": scratch})
        return app.extensions["medkb.api"].spec.to_yaml()


@main.command()
@click.option("--out", type=GivenPath(dir_okay=False, path_type=Path), default=Path("openapi.yaml"), show_default=True)
def openapi(out):
    """Write the OpenAPI document generated from the code (commit it; a test checks it is current)."""
    atomic_write(out, openapi_yaml().encode())
    click.echo(str(out))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=max(2, os.cpu_count() or 1), show_default=True, type=click.IntRange(1, 64))
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request to standard output.")
@click.option("--header-timeout", default=10.0, show_default=True, type=Seconds(0.001, 60),
              envvar="MEDKB_HEADER_TIMEOUT", help="Seconds a client may take to send its request line and headers.")
@click.option("--body-timeout", default=30.0, show_default=True, type=Seconds(0.001, 3600),
              envvar="MEDKB_BODY_TIMEOUT", help="Seconds a client may take to send its request body.")
def serve(host, port, workers, access_log, header_timeout, body_timeout):
    """Serve the API with granian: several worker processes sharing one read model file.

    The scheduler runs beside them in this process; SIGTERM or SIGINT stops everything cleanly.
    """
    import multiprocessing

    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    # Fail here, in one clear line, rather than in every worker; and fit the read model and the
    # search index to the store before any worker takes traffic.
    store = open_store()
    prepare_derived()
    webhook_service(store).close()  # and a malformed MEDKB_WEBHOOK_* setting too
    check_serve_settings()
    check_address(host, port)
    # The workers build their app from the environment.
    os.environ.update(MEDKB_DB=str(store_path()), MEDKB_BODY_TIMEOUT=str(body_timeout))
    # This run's own folder: shared rate-limit counters and, unless configured, metric files. Both
    # are written on every request, the metric files through mmap: on the store's disk, a full disk
    # made each worker die of SIGBUS (a write to a new page of a mapped file that can get no block),
    # until granian gave up. Shared memory is apart from every disk.
    runtime = run_folder()
    os.environ.setdefault("MEDKB_RATE_LIMIT_STORAGE", f"medkb-sqlite://{runtime / 'ratelimits.sqlite'}")
    metrics_dir = prepare_metrics_dir(runtime / "metrics")
    # Workers start from a fresh interpreter rather than a fork of this one, which runs the
    # scheduler thread: a fork would copy any lock that thread held at that instant.
    multiprocessing.set_start_method("spawn", force=True)
    server = Server("api.asgi:create_asgi_app", address=host, port=port, interface=Interfaces.ASGINL, factory=True,
                    workers=workers, http=HTTPModes.http1, websockets=False, log_access=access_log,
                    http1_settings=HTTP1Settings(header_read_timeout=round(header_timeout * 1000), keep_alive=True),
                    respawn_failed_workers=True, workers_kill_timeout=10)
    stop = threading.Event()
    scheduler = threading.Thread(target=supervise_scheduler, args=(stop,), daemon=True, name="scheduler")
    server.on_startup(scheduler.start)
    server.on_shutdown(stop.set)
    click.echo(f"medkb serving {store.location} on http://{host}:{port} with {workers} workers "
               f"(metrics in {metrics_dir})", err=True)
    try:
        server.serve()
    except RuntimeError as error:  # granian's start-up failures; its message may carry a Rust backtrace
        fail(f"medkb serve on {host}:{port}: {str(error).splitlines()[0]}")
    finally:
        if scheduler.is_alive():
            scheduler.join(timeout=10)
        shutil.rmtree(runtime, ignore_errors=True)


SHARED_MEMORY = "/dev/shm"  # a memory file system on Linux; elsewhere, the temporary folder


def run_folder():
    """A new folder for this run of `medkb serve`, named after its process. Folders of earlier
    runs whose process is gone (killed, so it could not clean up) are removed first: in shared
    memory they would hold memory until the machine restarts."""
    parent = Path(SHARED_MEMORY if os.access(SHARED_MEMORY, os.W_OK) else tempfile.gettempdir())
    for earlier in parent.glob("medkb-serve-*-*"):
        pid = earlier.name.split("-")[2]
        if pid.isdigit() and not process_exists(int(pid)):
            shutil.rmtree(earlier, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"medkb-serve-{os.getpid()}-", dir=parent))


def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def check_address(host, port):
    """One clear line if the address cannot be listened on (granian would print a traceback)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        fail(f"medkb serve: cannot listen on {host}:{port}: {error.strerror or error}")


def check_serve_settings():
    """The settings each worker reads from the environment, checked once here: a mistake is one
    line at start-up rather than a traceback in every worker."""
    from urllib.parse import urlsplit

    from limits.errors import ConfigurationError
    from limits.storage import storage_from_string

    from api.web.ratelimits import parse_limits  # also registers its medkb-sqlite:// storage

    for name in ("MEDKB_RATE_LIMIT_PUBLIC", "MEDKB_RATE_LIMIT_EDITORIAL"):
        try:
            parse_limits(name, os.environ.get(name) or "off")
        except ValueError as error:
            fail(str(error))
    storage = os.environ.get("MEDKB_RATE_LIMIT_STORAGE")
    if storage:
        try:
            storage_from_string(storage)
        except (ConfigurationError, ValueError) as error:
            fail(f"MEDKB_RATE_LIMIT_STORAGE: {storage!r} cannot be used ({one_line(error)})")
    cache_bytes = os.environ.get("MEDKB_RESPONSE_CACHE_BYTES")
    if cache_bytes and not (cache_bytes.isdigit() and cache_bytes.isascii()):
        fail(f"MEDKB_RESPONSE_CACHE_BYTES: {cache_bytes!r} is not a number of bytes such as 16777216 (0 turns the "
             f"response cache off)")
    base_url = os.environ.get("MEDKB_PUBLIC_BASE_URL")
    if base_url and not (urlsplit(base_url).scheme in ("http", "https") and urlsplit(base_url).netloc):
        fail(f"MEDKB_PUBLIC_BASE_URL: {base_url!r} is not an absolute http(s) URL such as https://medkb.example.org")


def prepare_metrics_dir(default):
    """prometheus-client's multiprocess folder, PROMETHEUS_MULTIPROC_DIR or `default`: emptied of
    metric files at start, so no earlier run's counts linger."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or default)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    count_into(folder)
    return folder


if __name__ == "__main__":
    main()
