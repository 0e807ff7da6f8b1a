"""PostgreSQL as the store: its schema commands, what only a database can get wrong, several API
nodes on one database, and moving content between the backends. The store's own behaviour runs
on both backends in test_store.py."""
import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import psycopg
import pytest
import requests

from api.services.documents import Documents
from api.store import open_store
from api.store.postgres import LANDED_WAIT_S, LATEST, PostgresStore, SchemaMismatch
from api.store.records import StorageUnavailable
from conftest import CONTENT, CONTENT_COUNT, ROOT
from servers import environment, serving


def medkb(db, *args, url=None):
    """`medkb ARGS` as a subprocess, on the folder `db` and, given `url`, that database."""
    env = environment(db, {"MEDKB_DATABASE_URL": url} if url else {})
    if not url:
        env.pop("MEDKB_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "api.cli", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=300)


def tree_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*.json"))}


# --- schema -----------------------------------------------------------------------

def test_db_init_creates_the_database_and_schema_and_running_it_again_changes_nothing(postgres_cluster, tmp_path):
    url = postgres_cluster.url("medkb_fresh")
    first = medkb(tmp_path, "db", "init", url=url)
    assert first.returncode == 0, first.stderr
    assert "database created" in first.stderr and first.stdout.strip().endswith(f"schema at version {LATEST}")
    again = medkb(tmp_path, "db", "init", url=url)
    assert again.returncode == 0 and again.stdout.strip().endswith(f"schema at version {LATEST} (already)")
    migrated = medkb(tmp_path, "db", "migrate", url=url)
    assert migrated.returncode == 0 and migrated.stdout.strip().endswith("nothing to do")
    with psycopg.connect(url) as connection:
        versions = connection.execute("SELECT version FROM medkb_schema_version ORDER BY version").fetchall()
    assert versions == [(n,) for n in range(1, LATEST + 1)]


def test_migrate_brings_an_older_schema_up_and_the_store_refuses_it_until_then(postgres_cluster, tmp_path):
    from api.store.postgres import migrations

    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name)
    with psycopg.connect(url) as connection:  # a database left at version 1 by an older medkb
        connection.execute("CREATE TABLE medkb_schema_version (version integer PRIMARY KEY, name text NOT NULL, "
                           "applied_at timestamptz NOT NULL DEFAULT now())")
        version, step, sql = migrations()[0]
        connection.execute(sql)
        connection.execute("INSERT INTO medkb_schema_version (version, name) VALUES (%s, %s)", (version, step))
    refused = medkb(tmp_path, "check", url=url)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().endswith(f"schema is at version 1, this medkb needs {LATEST}; run `medkb db migrate`.")
    migrated = medkb(tmp_path, "db", "migrate", url=url)
    assert migrated.returncode == 0, migrated.stderr
    assert [line.split()[2] for line in migrated.stderr.splitlines()] == [f"{n:04d}" for n in range(2, LATEST + 1)]
    assert medkb(tmp_path, "check", url=url).returncode == 0


def test_a_database_without_the_schema_is_refused_in_one_line(postgres_cluster, tmp_path):
    url = postgres_cluster.url(postgres_cluster.create_database())
    with pytest.raises(SchemaMismatch, match="holds no medkb schema; run `medkb db init`"):
        PostgresStore(url, tmp_path)
    done = medkb(tmp_path, "import", CONTENT, url=url)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "medkb db init" in done.stderr


@pytest.mark.parametrize("url,says", [
    ("postgresql://medkb:hunter2@127.0.0.1:1/medkb", "Connection refused"),
    ("postgresql://medkb@127.0.0.1:99999/medkb", "invalid port"),
    ("mysql://somewhere/medkb", "is not a PostgreSQL URL"),
])
def test_an_unreachable_or_malformed_database_is_one_line_naming_it_without_its_password(tmp_path, url, says):
    for command in (("db", "init"), ("check",), ("serve", "--port", "1")):
        done = medkb(tmp_path, *command, url=url)
        assert done.returncode == 1, (command, done.stdout)
        assert says in done.stderr and "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert "hunter2" not in done.stderr


# --- what only a database can get wrong ----------------------------------------------

def test_revisions_and_changes_cannot_be_rewritten_even_by_hand(pg_store, postgres_backend):
    with psycopg.connect(postgres_backend.url) as connection:
        for statement in ("UPDATE medkb_revisions SET message = 'rewritten'", "DELETE FROM medkb_changes",
                          "TRUNCATE medkb_revisions CASCADE"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                with connection.transaction():
                    connection.execute(statement)
    assert pg_store.verify() == []


def test_check_reports_tampered_content_and_pointers(pg_store, postgres_backend):
    with psycopg.connect(postgres_backend.url) as connection:
        connection.execute("ALTER TABLE medkb_revisions DISABLE TRIGGER medkb_revisions_append_only")
        connection.execute("UPDATE medkb_revisions SET content = json_build_object('answer', 'Tampered.', "
                           "'revision', 1) WHERE type = 'faq' AND id = 'drug-q1'")
        connection.execute("UPDATE medkb_documents SET pointers = json_build_object('head', 1, 'published', 5, "
                           "'last_seq', 7) WHERE type = 'faq' AND id = 'drug-q1'")
    problems = pg_store.verify()
    assert any("faq/drug-q1: revision 1: content does not match its hash" in p for p in problems), problems
    assert any("faq/drug-q1: published points at revision 5" in p for p in problems), problems


def test_the_change_sequence_stays_gap_free_when_a_commit_fails(pg_store, postgres_backend):
    """A commit refused inside its transaction uses no number: the next one gets it."""
    before = pg_store.last_seq()
    content = dict(pg_store.head("faq", "drug-q1").content, answer="Never stored.")
    with psycopg.connect(postgres_backend.url) as connection:  # the insert of the revision will fail
        connection.execute("ALTER TABLE medkb_revisions ADD CONSTRAINT no_never CHECK (message <> 'never')")
    with pytest.raises(psycopg.errors.CheckViolation):
        Documents(pg_store).write(content, expected_revision=1, actor="ann", message="never")
    assert pg_store.last_seq() == before and pg_store.head("faq", "drug-q1").revision == 1
    change = Documents(pg_store).write(content, expected_revision=1, actor="ann", message="now")
    assert change.seq == before + 1 and pg_store.verify() == []


def test_many_threads_of_one_process_write_through_one_store_and_lose_nothing(pg_store):
    """Threads share the pool; each writer's reads and commit stay on its own locked connection."""
    import threading

    template = pg_store.head("faq", "drug-q1").content
    written, failures = [], []

    def write(name):
        try:
            for i in range(5):
                faq = dict(template, id=f"{name}-q{i}", answer=f"{name} {i}")
                written.append(Documents(pg_store).write(faq, expected_revision=0, actor=name))
        except Exception as error:  # noqa: BLE001 - reported below, with the thread's name
            failures.append((name, error))

    threads = [threading.Thread(target=write, args=(f"t{n}",)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    before = pg_store.last_seq() - 60
    assert sorted(change.seq for change in written) == list(range(before + 1, before + 61))
    assert all(pg_store.head("faq", c.id).content["answer"] == f"{c.actor} {c.id[-1]}" for c in written)
    assert pg_store.verify() == []


def test_a_database_gone_away_is_storage_unavailable_and_nothing_is_committed(postgres_cluster, postgres_backend, pg_store):
    content = dict(pg_store.head("faq", "drug-q1").content, answer="Lost?")
    database = postgres_backend.url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
    # Pooled connections that the server dropped are noticed and replaced before use.
    change = Documents(pg_store).write(content, expected_revision=1, actor="ann")
    assert pg_store.head("faq", "drug-q1").content["answer"] == "Lost?" and change.seq == pg_store.last_seq()
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
    try:
        with pytest.raises(StorageUnavailable, match=database):
            Documents(pg_store).write(dict(content, answer="Refused."), expected_revision=2, actor="ann")
    finally:
        with psycopg.connect(postgres_cluster.url(), autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true")
    assert pg_store.head("faq", "drug-q1").content["answer"] == "Lost?" and pg_store.verify() == []


def test_api_keys_live_in_the_database_for_every_node(postgres_backend, tmp_path):
    from api.store.keys import KeyStoreError

    here, there = postgres_backend.open(), open_store(tmp_path / "other-node", postgres_backend.url)
    try:
        key, secret = here.api_keys().create("reviewer", "rita")
        assert there.api_keys().authenticate(secret) == key
        with pytest.raises(KeyStoreError, match="already exists"):
            there.api_keys().create("author", "rita")
        assert there.api_keys().revoke("rita").revoked_at
        assert here.api_keys().authenticate(secret) is None and here.api_keys().list()[0].revoked_at
        assert here.api_keys().authenticate("mkb_\x00") is None and here.api_keys().authenticate("nope") is None
        assert not (tmp_path / "other-node" / "keys.json").exists()
    finally:
        there.close()


def test_webhook_subscriptions_and_their_leases_are_shared_by_every_node(postgres_backend, pg_store, tmp_path):
    from api.services.webhooks import Settings, Webhooks, parse_allow

    other_node = open_store(tmp_path / "other-node", postgres_backend.url)
    try:
        here = Webhooks(pg_store, Settings(allow=parse_allow("127.0.0.1")))
        there = Webhooks(other_node, Settings(allow=parse_allow("127.0.0.1")))
        subscription = here.subscribe("http://127.0.0.1:9/hook", events=["publish"])
        assert [s.id for s, _ in there.list()] == [subscription.id]
        assert there.get(subscription.id)[1].cursor == pg_store.last_seq()
        with here.subscriptions.lease(subscription.id) as mine:
            assert mine
            with there.subscriptions.lease(subscription.id) as theirs:
                assert not theirs, "two nodes must never deliver to one subscription at once"
        with there.subscriptions.lease(subscription.id) as theirs:
            assert theirs, "a lease is released with its delivery run"
        holder = subprocess.Popen([sys.executable, "-c", (
            f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); from api.store import open_store; "
            f"s = open_store({str(tmp_path / 'killed')!r}, {postgres_backend.url!r}).webhook_subscriptions(); "
            f"lease = s.lease({subscription.id!r}); print(lease.__enter__(), flush=True); time.sleep(600)")],
            stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "True"
        with there.subscriptions.lease(subscription.id) as theirs:
            assert not theirs
        holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()
        deadline = time.monotonic() + 30  # the server notices the closed session at once, or nearly
        while True:
            with there.subscriptions.lease(subscription.id) as theirs:
                if theirs:
                    break
            assert time.monotonic() < deadline, "a killed delivery run's lease was never released"
            time.sleep(0.05)
        there.remove(subscription.id)
        assert here.list() == []
    finally:
        other_node.close()


def test_console_sessions_are_shared_by_every_node_and_expire(postgres_backend, tmp_path):
    import datetime

    from api.store.postgres import PostgresSessionStore

    here, other_node = postgres_backend.open(), open_store(tmp_path / "other-node", postgres_backend.url)
    try:
        key = here.api_keys().create("reviewer", "rita")[0]
        session_id, session = here.console_sessions().create(key)
        assert other_node.console_sessions().get(session_id) == session
        assert other_node.console_sessions().get(session_id[:-1] + "\x00") is None
        other_node.console_sessions().delete(session_id)
        assert here.console_sessions().get(session_id) is None
        expired_id, _ = PostgresSessionStore(here, lifetime=datetime.timedelta(0)).create(key)
        assert other_node.console_sessions().get(expired_id) is None
        assert not (tmp_path / "other-node" / "console-sessions").exists()
    finally:
        other_node.close()


# --- several API nodes -----------------------------------------------------------

FAQ_PATH = "faq/hemgenix-what-is-the-padua-variant"


@pytest.fixture
def shared_database(database_url, tmp_path):
    done = medkb(tmp_path / "importer", "import", CONTENT, url=database_url)
    assert done.returncode == 0, done.stderr
    return database_url


@pytest.mark.slow
def test_two_api_nodes_on_one_database_see_each_others_publish(shared_database, tmp_path):
    """Two `medkb serve`, each with its own folder and read model, as on two machines."""
    keys = {}
    for role, name in (("author", "ann"), ("reviewer", "rita"), ("publisher", "paul")):
        created = medkb(tmp_path / "node-a", "keys", "create", "--role", role, "--name", name, url=shared_database)
        keys[name] = created.stdout.strip()
    env = {"MEDKB_DATABASE_URL": shared_database}
    with serving(tmp_path / "node-a", workers=1, env=env) as node_a, \
            serving(tmp_path / "node-b", workers=1, env=env) as node_b:
        public = f"/v1/faqs/{FAQ_PATH.split('/')[1]}"
        assert requests.get(node_b + public).json()["question"] == requests.get(node_a + public).json()["question"]
        url = f"/v1/editorial/documents/{FAQ_PATH}"

        def call(node, who, method, path, body=None, etag=None):
            headers = {"Authorization": f"Bearer {keys[who]}", **({"If-Match": etag} if etag else {})}
            response = requests.request(method, node + path, json=body, headers=headers, timeout=30)
            assert response.status_code == 200, response.text
            return response.headers["ETag"]

        # The steps alternate between the nodes: each node's keys, locks and checks are the database's.
        etag = requests.get(node_b + url, headers={"Authorization": f"Bearer {keys['ann']}"}).headers["ETag"]
        etag = call(node_a, "ann", "PATCH", url, {"question": "What is the Padua variant, in short?"}, etag)
        etag = call(node_b, "ann", "POST", url + "/transitions", {"action": "submit"}, etag)
        etag = call(node_a, "rita", "POST", url + "/transitions", {"action": "approve"}, etag)
        call(node_a, "paul", "POST", url + "/transitions", {"action": "publish"}, etag)
        published_at = time.monotonic()
        deadline = published_at + 30  # correctness, not speed: bench/backends.py measures the delay
        while requests.get(node_b + public).json()["question"] != "What is the Padua variant, in short?":
            assert time.monotonic() < deadline, "node B never saw node A's publish"
            time.sleep(0.02)
        print(f"publish on node A visible on node B after {time.monotonic() - published_at:.3f} s")
        feed_a, feed_b = (requests.get(node + "/v1/feed").json() for node in (node_a, node_b))
        assert feed_a == feed_b


# --- moving content between the backends ----------------------------------------------

def test_export_import_between_backends_is_byte_stable(database_url, tmp_path):
    """files -> export -> PostgreSQL -> export -> files -> export: the same bytes every time."""
    shipped = tmp_path / "shipped"
    shutil.copytree(CONTENT, shipped)
    assert medkb(tmp_path / "files-1", "import", shipped).returncode == 0
    assert medkb(tmp_path / "files-1", "export", "--out", tmp_path / "from-files").returncode == 0
    imported = medkb(tmp_path / "pg-node", "import", tmp_path / "from-files", url=database_url)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip() == f"{CONTENT_COUNT} documents: {CONTENT_COUNT} changed, 0 unchanged; " \
                                      f"store at change {CONTENT_COUNT}."
    with contextlib.closing(sqlite3.connect(tmp_path / "pg-node" / "readmodel.sqlite")) as model:
        built = dict(model.execute("SELECT key, value FROM meta").fetchall())
    assert built["built"] == "beside the import" and built["head_applied"] == CONTENT_COUNT
    assert medkb(tmp_path / "pg-node", "export", "--out", tmp_path / "from-pg", url=database_url).returncode == 0
    assert medkb(tmp_path / "files-2", "import", tmp_path / "from-pg").returncode == 0
    assert medkb(tmp_path / "files-2", "export", "--out", tmp_path / "back-in-files").returncode == 0
    expected = tree_bytes(CONTENT)
    assert tree_bytes(tmp_path / "from-files") == expected
    assert tree_bytes(tmp_path / "from-pg") == expected
    assert tree_bytes(tmp_path / "back-in-files") == expected
    again = medkb(tmp_path / "pg-node", "import", tmp_path / "back-in-files", url=database_url)
    assert again.stdout.strip().endswith(f"0 changed, {CONTENT_COUNT} unchanged; store at change {CONTENT_COUNT}.")
    checked = medkb(tmp_path / "pg-node", "check", url=database_url)
    assert checked.returncode == 0 and json.dumps(checked.stdout).count("OK") == 1


def test_copy_store_moves_a_file_store_to_postgresql_with_its_history_and_numbers(store, database_url, tmp_path):
    faq = store.head("faq", "drug-q1").content
    Documents(store).write(dict(faq, answer="Second."), expected_revision=1, actor="ann", message="clarify")
    Documents(store).set_pointers("faq", "drug-q1", expected_revision=2, changes={"published": 2}, kind="publish",
                                  actor="paul", details={"role": "publisher"})
    Documents(store).write(dict(faq, answer="Draft."), expected_revision=2, actor="ann")
    Documents(store).delete("article", "about-drug", expected_revision=1, actor="ann", message="obsolete")
    done = medkb(tmp_path / "node", "db", "copy-store", store.root, url=database_url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"9 documents and {store.last_seq()} changes copied from {store.root}: OK.")
    copy = open_store(tmp_path / "node", database_url)
    try:
        assert copy.last_seq() == store.last_seq() and copy.changes(0) == store.changes(0)
        assert copy.publications(0) == store.publications(0)
        assert list(copy.keys()) == list(store.keys())
        for type_name, id_ in store.keys():
            assert copy.state(type_name, id_) == store.state(type_name, id_)
            assert copy.revisions(type_name, id_) == store.revisions(type_name, id_)
        change = Documents(copy).write(dict(faq, answer="On PostgreSQL."), expected_revision=3, actor="ann")
        assert change.seq == store.last_seq() + 1 and copy.verify() == []
    finally:
        copy.close()
    refused = medkb(tmp_path / "node", "db", "copy-store", store.root, url=database_url)
    assert refused.returncode == 1 and "copy into an empty database" in refused.stderr


def test_copy_store_leaves_a_folder_that_is_not_a_store_as_it_was(database_url, tmp_path):
    """Without a database to copy into, or from a folder that holds no store, the command fails
    in one line and writes nothing into the folder (it used to open it as a new store first)."""
    folder = tmp_path / "documents"
    folder.mkdir()
    (folder / "faq.json").write_text("{}")
    for url, message in ((None, "MEDKB_DATABASE_URL"), (database_url, "not a medkb file store")):
        result = medkb(tmp_path / "node", "db", "copy-store", folder, url=url)
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert [path.name for path in folder.iterdir()] == ["faq.json"]


# --- a database that crashes under a serving node ---------------------------------------------

@pytest.fixture
def own_cluster(tmp_path):
    """A throwaway PostgreSQL server of this test's own (the test crashes it), holding the shipped
    content: (cluster, database URL, the node's folder, an author's key)."""
    from pgcluster import Cluster

    cluster = Cluster().start()
    try:
        url = cluster.url("medkb_crashed")
        node = tmp_path / "node"
        for command in (("db", "init"), ("import", CONTENT)):
            done = medkb(node, *command, url=url)
            assert done.returncode == 0, done.stderr
        key = medkb(node, "keys", "create", "--role", "author", "--name", "ann", url=url).stdout.strip()
        yield cluster, url, node, key
    finally:
        cluster.stop()


@pytest.mark.slow
@pytest.mark.parametrize("down_seconds", [2, LANDED_WAIT_S + 5])
def test_a_write_whose_commit_acknowledgement_is_lost_is_never_answered_as_not_saved(down_seconds, own_cluster):
    """The database crashes after writing a PATCH's commit to its log and before acknowledging it
    (held there by synchronous replication to a standby that is not there). Back within
    LANDED_WAIT_S, the PATCH is answered 200; back later, 503 saying the outcome is not known.
    Never "nothing was saved": the change is in the database either way."""
    cluster, url, node, key = own_cluster
    with psycopg.connect(cluster.url(), autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby_that_is_not_there'")
        admin.execute("SELECT pg_reload_conf()")
    text = f"Written as the database went down for {down_seconds} s."
    with serving(node, workers=1, env={"MEDKB_DATABASE_URL": url}) as base:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        document = f"{base}/v1/editorial/documents/{FAQ_PATH}"
        etag = session.get(document, timeout=30).headers["ETag"]
        answered = {}
        writer = threading.Thread(target=lambda: answered.update(response=session.patch(
            document, json={"answer": text}, headers={"If-Match": etag}, timeout=120)))
        writer.start()
        deadline = time.monotonic() + 30
        with psycopg.connect(cluster.url(), autocommit=True) as admin:
            while not admin.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'").fetchone():
                assert time.monotonic() < deadline, "the PATCH never reached its COMMIT"
                time.sleep(0.05)
        cluster.crash()
        time.sleep(down_seconds)
        cluster.restart("synchronous_standby_names=''")
        writer.join(timeout=120)
        response = answered["response"]
        assert "nothing was saved" not in response.text
        if down_seconds < LANDED_WAIT_S:
            assert response.status_code == 200, response.text
            assert response.json()["document"]["answer"] == text
        else:
            assert response.status_code == 503, response.text
            assert "whether the change was saved is not known" in response.json()["detail"]
        deadline = time.monotonic() + 30
        while (head := session.get(document, timeout=30)).status_code != 200:
            assert time.monotonic() < deadline, head.text
            time.sleep(0.2)
        assert head.json()["document"]["answer"] == text


@pytest.mark.slow
def test_copy_store_of_a_file_store_being_written_copies_one_moment(store, database_url, tmp_path):
    """Writers keep committing to the file store while copy-store runs: they wait for the copy, which
    is consistent (checked clean, every change it holds the source's), and the copy takes writes."""
    writers = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "store_worker.py"), str(store.root), name, "400",
                                 str(tmp_path / f"{name}.log"), "drug-q1", "drug-q2"], cwd=ROOT)
               for name in ("ann", "bob")]
    try:
        while store.last_seq() < 20:  # the writers are at work
            time.sleep(0.01)
        done = medkb(tmp_path / "node", "db", "copy-store", store.root, url=database_url)
    finally:
        for writer in writers:
            assert writer.wait(timeout=300) == 0
    assert done.returncode == 0, done.stdout + done.stderr
    copy = open_store(tmp_path / "node", database_url)
    try:
        assert copy.verify() == []
        assert 20 <= copy.last_seq() < store.last_seq()
        assert copy.changes(0) == store.changes(0, limit=copy.last_seq())
        faq = copy.head("faq", "drug-q1")
        change = Documents(copy).write(dict(faq.content, answer="On PostgreSQL."), expected_revision=faq.revision,
                                       actor="ann")
        assert change.seq == copy.last_seq()
    finally:
        copy.close()


def test_copy_store_says_which_keys_and_subscriptions_it_leaves_behind(store, database_url, tmp_path):
    assert medkb(store.root, "keys", "create", "--role", "author", "--name", "ann").returncode == 0
    done = medkb(tmp_path / "node", "db", "copy-store", store.root, url=database_url)
    assert done.returncode == 0, done.stderr
    assert f"Not copied: 1 API key(s) and 0 webhook subscription(s), which stay in {store.root}." in done.stderr
    assert medkb(tmp_path / "node", "keys", "list", url=database_url).stdout.strip() == ""

@pytest.mark.slow
def test_with_the_database_down_public_reads_are_served_from_the_read_model_and_writes_are_503(own_cluster):
    """README: reads never touch the backend. A node whose database went down (a crash, a
    failover) answers public reads and liveness from what its read model holds; a write is a 503
    problem; once the database is back, writes work again with no restart."""
    cluster, url, node, key = own_cluster
    public = ["/v1/faqs/hemgenix-what-is-the-padua-variant", "/v1/faqs", "/v1/feed?limit=5", "/v1/bundle",
              "/v1/search?q=liver", "/v1/products/hemgenix?include=faqs", "/healthz"]
    with serving(node, workers=1, env={"MEDKB_DATABASE_URL": url}) as base:
        before = {path: requests.get(base + path, timeout=30).content for path in public}
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {key}"
        document = f"{base}/v1/editorial/documents/{FAQ_PATH}"
        etag = session.get(document, timeout=30).headers["ETag"]
        cluster.crash()
        for _ in range(3):  # fresh connections, and past the read model's retry pause
            for path in public:
                response = requests.get(base + path, headers={"Connection": "close"}, timeout=30)
                assert (response.status_code, response.content) == (200, before[path]), path
            time.sleep(0.5)
        refused = session.patch(document, json={"answer": "Not while the database is down."},
                                headers={"If-Match": etag}, timeout=60)
        assert refused.status_code == 503 and refused.headers["Content-Type"] == "application/problem+json"
        cluster.restart()
        deadline = time.monotonic() + 60
        while (saved := session.patch(document, json={"answer": "Saved once the database is back."},
                                      headers={"If-Match": etag}, timeout=60)).status_code != 200:
            assert saved.status_code == 503 and time.monotonic() < deadline, saved.text
            time.sleep(0.5)
        assert requests.get(base + "/readyz", timeout=30).status_code == 200
