"""`medkb webhooks ...`: manage subscriptions from the command line; errors are one line."""
import os
import subprocess
import sys

from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from api.cli.commands import main
from conftest import ROOT
from webhook_receiver import Receiver


def medkb(db, *arguments, allow="127.0.0.1", **env):
    """`medkb webhooks ARGUMENTS`, in this process (click's runner): returncode, stdout, stderr."""
    result = CliRunner().invoke(main, ["webhooks", *arguments], catch_exceptions=False,
                                env={"MEDKB_DB": str(db), "MEDKB_WEBHOOK_ALLOW": allow, **env})
    return SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)


def test_the_real_command_prints_the_secret_alone_on_standard_output(tmp_path):
    added = subprocess.run([sys.executable, "-m", "api.cli", "webhooks", "add", "http://127.0.0.1:9/hook"], cwd=ROOT,
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "MEDKB_DB": str(tmp_path / "db"),
                                "MEDKB_WEBHOOK_ALLOW": "127.0.0.1"})
    assert added.returncode == 0 and added.stdout.startswith("whsec_") and added.stdout.count("\n") == 1
    assert "store the secret now" in added.stderr


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def test_add_list_test_log_replay_remove(store, receiver):
    added = medkb(store.root, "add", receiver.url(), "--event", "publish", "--type", "faq")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "\n" not in secret
    receiver.secrets["hook"] = secret
    sub_id = added.stderr.split()[2]

    listed = medkb(store.root, "list").stdout.splitlines()
    assert listed == [f"{sub_id}\tactive\t{store.last_seq()}\tpublish\tfaq\t{receiver.url()}"]
    assert secret not in medkb(store.root, "list").stdout

    tested = medkb(store.root, "test", sub_id)
    assert tested.returncode == 0 and "HTTP 204" in tested.stdout
    assert receiver.messages()[0]["type"] == "test" and receiver.rejected == []
    log = medkb(store.root, "log", sub_id).stdout.splitlines()
    assert len(log) == 1 and "\ttest\t-\t204\t" in log[0]

    replayed = medkb(store.root, "replay", sub_id, "--since", "0")
    assert replayed.returncode == 0 and "after change 0" in replayed.stdout
    assert medkb(store.root, "list").stdout.split("\t")[2] == "0"

    removed = medkb(store.root, "remove", sub_id)
    assert removed.returncode == 0 and medkb(store.root, "list").stdout == ""


@pytest.mark.parametrize("arguments, message", [
    (("add", "http://10.1.2.3/hook"), "url: The URL host 10.1.2.3 resolves to 10.1.2.3"),
    (("add", "http://127.0.0.1:1/hook", "--event", "edit"), "events: Unknown event(s) edit"),
    (("add", "http://127.0.0.1:1/hook", "--type", "drug"), "types: Unknown type(s) drug"),
    (("remove", "wh_00000000"), "No webhook subscription 'wh_00000000'"),
    (("test", "../../etc"), "No webhook subscription '../../etc'"),
    (("replay", "wh_00000000", "--since", "1"), "No webhook subscription"),
    (("add", "http://127.0.0.1:1/hook\nx"), "must not contain spaces or control characters"),
    (("add", "http://127.0.0.1:1/ho\tok"), "must not contain spaces or control characters"),
    (("add", "http://127.0.0.1:1/hook", "--description", "two\nlines"), "One line of text"),
])
def test_bad_input_is_one_line_and_changes_nothing(tmp_path, arguments, message):
    result = medkb(tmp_path / "db", *arguments)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert medkb(tmp_path / "db", "list").stdout == ""


@pytest.mark.parametrize("name, value", [("MEDKB_WEBHOOK_BACKOFF", "soon"), ("MEDKB_WEBHOOK_CONNECT_TIMEOUT", "inf"),
                                         ("MEDKB_WEBHOOK_READ_TIMEOUT", "nan"), ("MEDKB_WEBHOOK_CONCURRENCY", "1.5"),
                                         ("MEDKB_WEBHOOK_CONCURRENCY", "0")])
def test_a_malformed_setting_is_one_line_naming_it(tmp_path, name, value):
    result = medkb(tmp_path / "db", "list", **{name: value})
    assert result.returncode == 1 and result.stderr.startswith(f"{name}={value!r}: must be")
    assert result.stderr.count("\n") == 1


def test_a_malformed_allow_list_is_one_line_naming_it(tmp_path):
    result = medkb(tmp_path / "db", "list", allow="127.0.0.1,intranet")
    assert result.returncode == 1 and "MEDKB_WEBHOOK_ALLOW: 'intranet'" in result.stderr
