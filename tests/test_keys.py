"""The API key store, on real files: secrets, names, revocation, other processes, corruption."""
import datetime
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from api.store.keys import ROLES, ApiKey, KeyStore, KeyStoreError
from api.store.storage import StoreCorrupt

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def keys(tmp_path):
    return KeyStore(tmp_path / "store")


def file_bytes(store):
    return store.path.read_bytes() if store.path.exists() else None


# --- create and authenticate ---------------------------------------------------

def test_folder_is_created_and_nothing_written_until_a_key_is_created(tmp_path):
    store = KeyStore(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    assert store.list() == []
    assert store.authenticate("mkb_" + "x" * 43) is None
    assert not store.path.exists()


def test_created_secret_authenticates_to_its_key(keys):
    key, secret = keys.create("reviewer", "ann")
    assert isinstance(key, ApiKey)
    assert (key.name, key.role, key.revoked_at) == ("ann", "reviewer", None)
    assert re.fullmatch(r"k_[0-9a-f]{8}", key.id)
    assert key.created_at.endswith("Z")
    assert datetime.datetime.fromisoformat(key.created_at).utcoffset() == datetime.timedelta(0)
    assert secret.startswith("mkb_") and len(secret) == 4 + 43
    assert key.id not in secret
    assert keys.authenticate(secret) == key
    assert keys.list() == [key]


def test_secret_is_never_stored(keys):
    key, secret = keys.create("admin", "root")
    raw = keys.path.read_bytes()
    assert secret.encode() not in raw
    assert secret[len("mkb_"):].encode() not in raw
    assert secret[len("mkb_"):][:16].encode() not in raw
    stored = orjson.loads(raw)["keys"]
    assert len(stored) == 1
    import hashlib
    assert next(iter(stored.values()))["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()


def test_each_role_and_many_keys_authenticate_to_the_right_one(keys):
    made = [keys.create(role, f"user-{role}-{i}") for i in range(5) for role in ROLES]
    assert len({secret for _, secret in made}) == len(made)
    assert len({key.id for key, _ in made}) == len(made)
    for key, secret in made:
        assert keys.authenticate(secret) == key
    assert keys.list() == [key for key, _ in made]  # creation order


@pytest.mark.parametrize("candidate", [
    "", "mkb_", "mkb_wrong", "MKB_x", "Bearer mkb_x", "x" * 10_000, "mkb_" + "a" * 9_996,
    "mkb_é", "mkb_\udc80", None, b"mkb_bytes", 12345,
])
def test_malformed_or_unknown_secrets_do_not_authenticate(keys, candidate):
    keys.create("author", "ann")
    assert keys.authenticate(candidate) is None


def test_near_misses_of_a_real_secret_do_not_authenticate(keys):
    key, secret = keys.create("author", "ann")
    body = secret[len("mkb_"):]
    for candidate in [secret[:-1], secret[:10], secret + "A", secret.upper(), "mkc_" + body, body,
                      " " + secret, secret + "\n", "mkb_" + body[::-1], secret + "x" * 10_000]:
        assert keys.authenticate(candidate) is None, candidate
    assert keys.authenticate(secret) == key


# --- revoke --------------------------------------------------------------------

def test_revoke_by_name(keys):
    key, secret = keys.create("publisher", "ann")
    other, other_secret = keys.create("author", "bob")
    revoked = keys.revoke("ann")
    assert revoked.id == key.id and revoked.revoked_at is not None and revoked.revoked_at.endswith("Z")
    assert revoked.revoked_at >= key.created_at
    assert keys.authenticate(secret) is None
    assert keys.authenticate(other_secret) == other
    assert keys.list() == [revoked, other]


def test_revoke_by_id(keys):
    key, secret = keys.create("admin", "ann")
    revoked = keys.revoke(key.id)
    assert (revoked.id, revoked.name, revoked.role, revoked.created_at) == (key.id, key.name, key.role, key.created_at)
    assert keys.authenticate(secret) is None
    [listed] = keys.list()
    assert listed.revoked_at == revoked.revoked_at


@pytest.mark.parametrize("target", ["nobody", "", "k_00000000", "ANN"])
def test_revoking_an_unknown_key_fails_and_writes_nothing(keys, target):
    keys.create("author", "ann")
    before = file_bytes(keys)
    with pytest.raises(KeyStoreError):
        keys.revoke(target)
    assert file_bytes(keys) == before


def test_revoking_twice_fails(keys):
    key, _ = keys.create("author", "ann")
    keys.revoke("ann")
    before = file_bytes(keys)
    with pytest.raises(KeyStoreError, match="already revoked"):
        keys.revoke(key.id)
    with pytest.raises(KeyStoreError):
        keys.revoke("ann")  # no active key has that name any more
    assert file_bytes(keys) == before


def test_a_revoked_name_can_be_reused(keys):
    old, old_secret = keys.create("author", "ann")
    keys.revoke("ann")
    new, new_secret = keys.create("reviewer", "ann")
    assert new.id != old.id
    assert keys.authenticate(old_secret) is None
    assert keys.authenticate(new_secret) == new
    assert [(k.id, k.revoked_at is None) for k in keys.list()] == [(old.id, False), (new.id, True)]
    # Revoking by name now means the active key; the old one stays revoked, untouched.
    old_revoked_at = keys.list()[0].revoked_at
    keys.revoke("ann")
    assert keys.authenticate(new_secret) is None
    assert keys.list()[0].revoked_at == old_revoked_at
    assert all(k.revoked_at for k in keys.list())


# --- validation ----------------------------------------------------------------

@pytest.mark.parametrize("role", ["", "Admin", "owner", " admin", "admin ", None, 1, ["admin"]])
def test_bad_roles_are_refused_and_nothing_is_written(keys, role):
    with pytest.raises(KeyStoreError, match="author, reviewer, publisher, admin"):
        keys.create(role, "fresh")
    assert not keys.path.exists()
    keys.create("author", "ann")
    before = file_bytes(keys)
    with pytest.raises(KeyStoreError):
        keys.create(role, "fresh")
    assert file_bytes(keys) == before


@pytest.mark.parametrize("name", ["", "a" * 65, "ann smith", "ann/..", "ann\n", "ann\x00", "änn", "ann!",
                                  "k_3f9a1c2b", None, 42])
def test_bad_names_are_refused_and_nothing_is_written(keys, name):
    with pytest.raises(KeyStoreError) as error:
        keys.create("author", name)
    assert "name" in str(error.value)
    assert not keys.path.exists()
    keys.create("author", "ann")
    before = file_bytes(keys)
    with pytest.raises(KeyStoreError):
        keys.create("author", name)
    assert file_bytes(keys) == before


@pytest.mark.parametrize("name", ["a", "a" * 64, "ann.smith@example.org", "build-bot_2", "A.B-C_D@9"])
def test_good_names_are_accepted(keys, name):
    key, secret = keys.create("author", name)
    assert keys.authenticate(secret).name == name


def test_duplicate_active_name_is_refused(keys):
    key, secret = keys.create("author", "ann")
    before = file_bytes(keys)
    with pytest.raises(KeyStoreError, match="ann"):
        keys.create("admin", "ann")
    assert file_bytes(keys) == before
    assert keys.list() == [key]
    keys.create("author", "Ann")  # names are compared exactly


# --- several instances and processes -------------------------------------------

def test_two_instances_on_one_folder_see_each_other(tmp_path):
    first, second = KeyStore(tmp_path / "s"), KeyStore(tmp_path / "s")
    key, secret = first.create("author", "ann")
    assert second.authenticate(secret) == key  # second now holds a parsed copy of the file
    other, other_secret = second.create("reviewer", "bob")
    assert first.authenticate(other_secret) == other
    first.revoke("bob")
    assert second.authenticate(other_secret) is None
    assert second.authenticate(secret) == key
    second.revoke(key.id)
    assert first.authenticate(secret) is None
    assert first.list() == second.list()
    with pytest.raises(KeyStoreError):
        second.revoke("ann")


def test_a_key_created_and_revoked_by_another_process_is_seen(keys):
    keys.create("author", "warm-the-cache")
    assert keys.authenticate("mkb_" + "z" * 43) is None
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from api.store.keys import KeyStore;"
              f"key, secret = KeyStore({str(keys.folder)!r}).create('publisher', 'remote'); print(secret)")
    secret = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout.strip()
    key = keys.authenticate(secret)
    assert (key.name, key.role) == ("remote", "publisher")
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from api.store.keys import KeyStore;"
              f"KeyStore({str(keys.folder)!r}).revoke('remote')")
    subprocess.run([sys.executable, "-c", script], check=True)
    assert keys.authenticate(secret) is None


WORKER = """
import sys
sys.path.insert(0, {root!r})
from api.store.keys import KeyStore
store = KeyStore({folder!r})
with open({out!r}, "w") as out:
    for i in range(25):
        key, secret = store.create("author", f"w{worker}-{{i}}")
        out.write(f"{{key.id}} {{key.name}} {{secret}}\\n")
        out.flush()
"""


@pytest.mark.slow
def test_concurrent_processes_create_keys_without_losing_any(tmp_path):
    folder = tmp_path / "shared"
    outputs = [tmp_path / f"secrets-{n}.txt" for n in range(4)]
    workers = [subprocess.Popen([sys.executable, "-c", WORKER.format(root=str(ROOT), folder=str(folder),
                                                                        out=str(out), worker=n)])
               for n, out in enumerate(outputs)]
    try:
        codes = [worker.wait(timeout=120) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert codes == [0, 0, 0, 0]
    made = [line.split() for out in outputs for line in out.read_text().splitlines()]
    assert len(made) == 100
    store = KeyStore(folder)
    listed = store.list()
    assert len(listed) == 100
    assert {key.id for key in listed} == {key_id for key_id, _, _ in made}
    assert {key.name for key in listed} == {f"w{n}-{i}" for n in range(4) for i in range(25)}
    assert [key.created_at for key in listed] == sorted(key.created_at for key in listed)
    for key_id, name, secret in made:
        key = store.authenticate(secret)
        assert key is not None and (key.id, key.name) == (key_id, name)
    raw = store.path.read_bytes()
    assert not any(secret.encode() in raw for _, _, secret in made)
    assert sorted(p.name for p in folder.iterdir()) == ["keys.json", "keys.lock"]  # no temporaries left


# --- corruption ----------------------------------------------------------------

CORRUPT = {
    "truncated": b'{"keys": {"1": {"id": "k_0000',
    "empty": b"",
    "not an object": b"[]",
    "table not an object": b'{"keys": []}',
    "record missing fields": b'{"keys": {"1": {"id": "k_00000000", "name": "ann"}}}',
    "hash not hex": (b'{"keys": {"1": {"id": "k_00000000", "name": "ann", "role": "admin", '
                     b'"created_at": "2026-01-01T00:00:00.000000Z", "revoked_at": null, "secret_sha256": "secret"}}}'),
    "unknown role": (b'{"keys": {"1": {"id": "k_00000000", "name": "ann", "role": "god", '
                     b'"created_at": "2026-01-01T00:00:00.000000Z", "revoked_at": null, "secret_sha256": "' + b"a" * 64 + b'"}}}'),
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_file_raises_and_is_left_untouched(tmp_path, content):
    folder = tmp_path / "store"
    good = KeyStore(folder)
    key, secret = good.create("admin", "ann")
    assert good.authenticate(secret) == key  # a cached copy must not hide the corruption
    good.path.write_bytes(content)
    for store in (good, KeyStore(folder)):
        operations = [lambda: store.list(), lambda: store.authenticate(secret),
                      lambda: store.authenticate("mkb_" + "q" * 43), lambda: store.create("author", "bob"),
                      lambda: store.revoke("ann"), lambda: store.revoke(key.id)]
        for operation in operations:
            with pytest.raises(StoreCorrupt) as error:
                operation()
            assert str(store.path) in str(error.value)
            assert error.value.path == store.path
            assert store.path.read_bytes() == content
    assert sorted(p.name for p in folder.iterdir()) == ["keys.json", "keys.lock"]
