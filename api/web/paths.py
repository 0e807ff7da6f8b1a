"""Path segments that name documents are slugs, checked before anything uses them.

A document's type and id become file names in the store: an id of 255+ characters or holding
NUL makes the file system fail, which must read as "no such document", never as a 500.
"""
import re

from flask_smorest import abort

from schemas.fields import SLUG_MAX_LENGTH, SLUG_PATTERN

_SLUG = re.compile(SLUG_PATTERN)
# The names routes give their document segments (before and after `{id}`/`{type}` converters).
SEGMENTS = ("id", "id_", "type", "type_name")


def check_path_segments(endpoint, values):
    """url_value_preprocessor: 404 for a document segment that no document could have."""
    for name in SEGMENTS:
        value = (values or {}).get(name)
        if isinstance(value, str) and (len(value) > SLUG_MAX_LENGTH or not _SLUG.fullmatch(value)):
            abort(404, message=f"No such document: types and ids are lowercase slugs (letters, digits, single "
                               f"hyphens) of at most {SLUG_MAX_LENGTH} characters.")
