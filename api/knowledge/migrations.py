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


UNKNOWN = {"status": "unverified", "note": "Not recorded before format 3; confirm against a primary source."}


@migration(2)
def verification_codes_and_review(document):
    """Version 3 records how each fact was verified (an object, never a bare word), keeps full
    ATC codes as identifiers rather than classes, and says outright whether content was
    medically reviewed. Nothing is guessed: what version 2 did not record becomes 'unverified'
    or is left for validation to report."""
    def upgrade(node, top=False):
        if isinstance(node, dict):
            return {key: ({"status": value} if key == "verification" and isinstance(value, str) and not top
                          else upgrade(value)) for key, value in node.items()}
        if isinstance(node, list):
            return [upgrade(item) for item in node]
        return node

    # A source's own `verification` says whether its text was read; it stays a word.
    document = upgrade(document, top=document.get("type") == "source")
    kind = document.get("type")
    if kind == "product":
        classes, moved = [], []
        for item in document.get("classes") or []:
            code = item.get("code") if isinstance(item, dict) else None
            if isinstance(item, dict) and item.get("system") == "atc" and isinstance(code, str) and len(code) == 7:
                moved.append({"system": "atc", "value": code, "citations": item.get("citations") or [],
                              "verification": item.get("verification") or UNKNOWN})
                # The class is the code's level-4 group, which by ATC's own structure is its first five characters.
                group = {key: value for key, value in item.items() if key != "name"}
                group["code"] = code[:5]
                group["verification"] = item.get("verification") or UNKNOWN
                if not any(isinstance(c, dict) and c.get("code") == group["code"] for c in classes):
                    classes.append(group)
            else:
                classes.append(item)
        identifiers = [dict(item, verification=item.get("verification") or UNKNOWN) if isinstance(item, dict) else item
                       for item in document.get("identifiers") or []]
        document = dict(document, classes=classes, identifiers=identifiers + moved)
        if not document["identifiers"]:
            del document["identifiers"]
        document["approvals"] = [dict(a, verification=a.get("verification") or UNKNOWN) if isinstance(a, dict) else a
                                 for a in document.get("approvals") or []]
        if not document["approvals"]:
            del document["approvals"]
    if kind in ("product", "article") and "review_status" not in document:
        reviewed = document.get("medical_reviewer") and document.get("last_reviewed")
        document = dict(document, review_status="medically_reviewed" if reviewed else "not_medically_reviewed")
    if kind == "article" and "slug" not in document and isinstance(document.get("id"), str):
        document = dict(document, slug=document["id"])
    return document


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
