"""api/web/smorest.py overrides or relies on private flask-smorest internals. Each is pinned here
by a hash of its upstream source: a flask-smorest upgrade that changes one fails this test, so
the override is looked at again before it silently drifts (pyproject pins flask-smorest<0.48)."""
import hashlib
import inspect

import flask_smorest
import pytest
from flask_smorest.etag import EtagMixin, _get_etag_ctx

from api.web.smorest import Api, Blueprint

PINNED = [
    (EtagMixin, "_check_precondition", "e225b1b2f8c6cd6e", Blueprint),
    (EtagMixin, "_check_not_modified", "80a3fd67261094f4", Blueprint),
    (EtagMixin, "_verify_check_etag", "913d2111f401cdda", None),  # relies on the "etag_checked" flag
    (flask_smorest.Api, "_register_responses", "42ac780261644c27", Api),
    (flask_smorest.Api, "_register_pagination_header", "9ab8194a5ee639f7", Api),
]


@pytest.mark.parametrize("owner,name,digest,ours", PINNED, ids=[name for _, name, _, _ in PINNED])
def test_overridden_upstream_internals_are_unchanged(owner, name, digest, ours):
    source = inspect.getsource(getattr(owner, name))
    assert hashlib.sha256(source.encode()).hexdigest()[:16] == digest, f"flask-smorest changed {name}: review ours"
    if ours is not None:
        assert getattr(ours, name) is not getattr(owner, name), f"{name} is no longer overridden"


def test_the_etag_context_we_write_to_is_unchanged():
    assert hashlib.sha256(inspect.getsource(_get_etag_ctx).encode()).hexdigest()[:16] == "8d6f6d1a63c87acb"
