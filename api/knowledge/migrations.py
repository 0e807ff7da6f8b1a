"""Document format migrations, keyed by the `schema_version` they upgrade from.

Loading any document runs it through `migrate` first, so older files keep
working; `medkb migrate` rewrites them so the files catch up too.
"""
from schemas import CURRENT_SCHEMA_VERSION

MIGRATIONS = {}


class UnknownFormat(ValueError):
    pass


def migration(from_version):
    def register(function):
        MIGRATIONS[from_version] = function
        return function
    return register


@migration(1)
def citations_become_objects(document):
    """Version 1 cited bare source ids; version 2 cites {source, locator}."""
    def upgrade(node):
        if isinstance(node, dict):
            return {key: ([{"source": c} if isinstance(c, str) else c for c in value]
                          if key == "citations" and isinstance(value, list) else upgrade(value))
                    for key, value in node.items()}
        if isinstance(node, list):
            return [upgrade(item) for item in node]
        return node
    return upgrade(document)


def migrate(document):
    """Return the document in the current format (a new dict when anything changed)."""
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version == CURRENT_SCHEMA_VERSION:
        return document  # validation reports a missing or malformed version
    if version > CURRENT_SCHEMA_VERSION:
        raise UnknownFormat(
            f"schema_version {version} is newer than this medkb understands "
            f"(up to {CURRENT_SCHEMA_VERSION}); upgrade medkb."
        )
    if version < 1:
        raise UnknownFormat(f"schema_version {version} is not a known format.")
    while version < CURRENT_SCHEMA_VERSION:
        document = dict(MIGRATIONS[version](document), schema_version=version + 1)
        version += 1
    return document
