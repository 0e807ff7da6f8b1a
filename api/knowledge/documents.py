"""Reading and checking knowledge-base documents: one file, one document, or a whole set.

Every problem is reported as `where: field: message`, where `where` is a file
path on the command line or `type/id` inside the store.
"""
import json
import math
import stat
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from schemas import DOCUMENT_SCHEMAS, FOLDER_TYPES, REFERENCES, TYPE_FOLDERS

from api.knowledge.integrity import integrity_errors
from api.knowledge.migrations import UnknownFormat, migrate
from api.knowledge.parallel import fork_map

_SCHEMAS = {type_name: cls() for type_name, cls in DOCUMENT_SCHEMAS.items()}


def printable(text):
    """`text` for a one-line report: control characters and lone surrogates (a file name with a
    newline, a key '\\udfff') written as Python escapes them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


@dataclass(frozen=True)
class Problem:
    where: str
    field: str
    message: str

    def __str__(self):
        where = printable(self.where)  # one problem, one line
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class DocumentFileError(ValueError):
    """A file that cannot be read as one JSON object; the message is one line."""


# Real documents nest about 7 levels (translations > locale > steps > step > citations > citation).
# A limit far below Python's recursion limit keeps every recursive consumer (schemas, diff, JSON
# encoders) safe.
MAX_DEPTH = 64
# Numbers beyond 2^53 lose precision in JavaScript and most JSON parsers (RFC 8259 §6, I-JSON
# RFC 7493 §2.2), and orjson, which writes the store, refuses integers beyond 64 bits.
MAX_SAFE_INTEGER = 2**53 - 1
TOO_DEEP = f"Nested more than {MAX_DEPTH} levels deep."
OUT_OF_RANGE = f"Numbers must be finite and between -{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}."
BAD_UNICODE = "Contains an unpaired surrogate (\\ud800-\\udfff), which is not Unicode text."


def _valid_unicode(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def value_problems(value):
    """(field path, message) for what JSON should not carry and the store cannot keep: nesting
    beyond MAX_DEPTH, numbers outside ±MAX_SAFE_INTEGER or not finite, lone surrogates. A too
    deep branch is reported once, at the container where it crosses the limit."""
    problems = []
    stack = [((), value, 1)]
    while stack:
        path, node, depth = stack.pop()
        if isinstance(node, dict):
            items = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            if isinstance(node, (int, float)) and not isinstance(node, bool):
                if not math.isfinite(node) or abs(node) > MAX_SAFE_INTEGER:
                    problems.append((_dotted(path), OUT_OF_RANGE))
            elif isinstance(node, str) and not _valid_unicode(node):
                problems.append((_dotted(path), BAD_UNICODE))
            continue
        if depth > MAX_DEPTH:
            problems.append((_dotted(path), TOO_DEEP))
            continue
        for key, child in items:
            if isinstance(key, str) and not _valid_unicode(key):
                problems.append((_dotted((*path, key)), BAD_UNICODE))
            stack.append(((*path, key), child, depth + 1))
    return problems


def _dotted(path):
    """A field path as the schemas report it ("steps.0.title"), kept short for very deep ones."""
    shown = ".".join(printable(part) for part in path[:8])  # a key may itself be what is wrong
    return shown + (".…" if len(path) > 8 else "") if path else "_document"


def _parse_int(literal):
    # int() refuses literals over 4,300 digits (a guard against quadratic conversion); anything
    # that long is out of range anyway, and as a float it is reported as such.
    return int(literal) if len(literal) <= 20 else float(literal)


class DuplicateKey(ValueError):
    """An object naming the same key twice: JSON parsers keep one of the two values, silently."""


def _object(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def parse_json_text(text, *, unique_keys=False):
    """json.loads for untrusted text: any length of number parses (value_problems judges it).
    Raises json.JSONDecodeError, or RecursionError for nesting deeper than Python can follow;
    with unique_keys, DuplicateKey for an object that names a key twice."""
    return json.loads(text, parse_int=_parse_int, object_pairs_hook=_object if unique_keys else None)


class InvalidDocument(ValueError):
    """A document that fails its schema or its references: errors are (field path, message)."""

    def __init__(self, key, errors):
        self.key, self.errors = key, list(errors)
        super().__init__("; ".join(f"{key}: {field}: {message}" for field, message in self.errors))


def key_of(document):
    return f"{document.get('type')}/{document.get('id')}"


def read_document_file(path):
    """Parse one file as a JSON object, or raise DocumentFileError saying exactly why not."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise DocumentFileError("is a folder, expected a JSON file")
        if not stat.S_ISREG(mode):  # reading a FIFO or a device would wait or never end
            raise DocumentFileError("is not a regular file, expected a JSON file")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DocumentFileError("no such file") from None
    except OSError as error:
        raise DocumentFileError(f"cannot be read: {error.strerror}") from None
    if not raw.strip():
        raise DocumentFileError("is empty, expected a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DocumentFileError(f"is not UTF-8 (byte {error.start})") from None
    try:
        # A key twice in a file is an editing slip (a merge, a paste) whose first value would
        # vanish without a word.
        document = parse_json_text(text, unique_keys=True)
    except DuplicateKey as error:
        raise DocumentFileError(f"names the key '{printable(error)}' twice in one object; keep one") from None
    except json.JSONDecodeError as error:
        raise DocumentFileError(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    except RecursionError:
        raise DocumentFileError(f"is nested more than {MAX_DEPTH} levels deep") from None
    if not isinstance(document, dict):
        raise DocumentFileError(f"expected a JSON object, found {type(document).__name__}")
    return document


def flatten_errors(errors, prefix=""):
    """marshmallow's nested error dict as (dotted field path, message) pairs."""
    for key, value in errors.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            yield from flatten_errors(value, path)
        else:
            for message in value if isinstance(value, list) else [value]:
                if isinstance(message, dict):
                    yield from flatten_errors(message, path)
                else:
                    yield path, str(message)


def schema_errors(document):
    """(field, message) pairs for one document against its type's schema, after migration."""
    type_name = document.get("type")
    schema = _SCHEMAS.get(type_name) if isinstance(type_name, str) else None
    if schema is None:
        return [("type", f"Must be one of: {', '.join(sorted(_SCHEMAS))}.")]
    return sorted(flatten_errors(schema.validate(document)))


def load_document(document):
    """Migrate a parsed document to the current format and validate it.

    Returns (document, errors) where errors is a list of (field, message).
    """
    problems = value_problems(document)
    if problems:
        return document, sorted(problems)
    try:
        document = migrate(document)
    except UnknownFormat as error:
        return document, [("schema_version", str(error))]
    return document, schema_errors(document)


def _values_at(document, path):
    """The values at a REFERENCES path like 'related[].product', with their concrete paths."""
    head, _, rest = path.partition(".")
    is_list = head.endswith("[]")
    name = head.removesuffix("[]")
    value = document.get(name) if isinstance(document, dict) else None
    if value is None:
        return
    items = list(enumerate(value)) if is_list and isinstance(value, list) else [(None, value)]
    for index, item in items:
        concrete = name if index is None else f"{name}.{index}"
        if rest:
            for sub_path, sub_value in _values_at(item, rest):
                yield f"{concrete}.{sub_path}", sub_value
        elif isinstance(item, str):
            yield concrete, item


def _citations(node, path=""):
    """(field path, source id) of every citation. Only objects and lists are visited: strings,
    most of a document, hold no citation."""
    found = []

    def visit(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "citations" and isinstance(value, list):
                    child = f"{path}.{key}" if path else key
                    for index, citation in enumerate(value):
                        if isinstance(citation, dict) and isinstance(citation.get("source"), str):
                            found.append((f"{child}.{index}.source", citation["source"]))
                elif isinstance(value, (dict, list)):
                    visit(value, f"{path}.{key}" if path else key)
        else:
            for index, item in enumerate(node):
                if isinstance(item, (dict, list)):
                    visit(item, f"{path}.{index}")

    if isinstance(node, (dict, list)):
        visit(node, path)
    return found


def references(document):
    """Every (field path, target type, target id) this document points at."""
    for path, target_type in REFERENCES.get(document.get("type"), []):
        for concrete, target_id in _values_at(document, path):
            yield concrete, target_type, target_id
    for concrete, target_id in _citations(document):
        yield concrete, "source", target_id


def reference_errors(document, lookup):
    """(field, message) for references that do not resolve or do not fit.

    `lookup(type, id)` returns the referenced document or None.
    """
    errors = []
    for field, target_type, target_id in references(document):
        target = lookup(target_type, target_id)
        if target is None:
            errors.append((field, f"refers to {target_type}/{target_id}, which does not exist."))
        elif document.get("type") == "article" and target_type in ("faq", "mechanism"):
            about = document.get("about")
            if target.get("product") != about:
                errors.append((field, f"{target_type}/{target_id} is about product/{target.get('product')}, "
                                      f"but this article is about product/{about}."))
    return errors + integrity_errors(document, lookup)


@dataclass
class LoadedSet:
    documents: dict  # "type/id" -> document
    paths: dict      # "type/id" -> Path
    problems: list
    files_seen: int
    outside: dict = field(default_factory=dict)  # "type/id" -> what lookup_outside answered for it
    leaning_outside: set = frozenset()  # keys of the documents whose references needed `outside`


def json_files(paths):
    """The files named, and the *.json files under the folders named, in a stable order."""
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if not any(part.startswith(".") for part in p.parts))
        else:
            yield path


def check_location(path, document):
    """The file name is the id; a file under a type's folder holds that type."""
    errors = []
    if isinstance(document.get("id"), str) and path.stem != document["id"]:
        errors.append(("id", f"is '{document['id']}' but the file is named '{path.name}'; they must match."))
    folder_type = FOLDER_TYPES.get(path.parent.name)
    if folder_type and isinstance(document.get("type"), str) and document["type"] in DOCUMENT_SCHEMAS \
            and document["type"] != folder_type:
        errors.append(("type", f"is '{document['type']}' but the file is in {path.parent.name}/, "
                               f"which holds {folder_type} documents."))
    return errors


def load_set(paths, *, processes=None, progress=None, set_progress=None, lookup_outside=None):
    """Read, migrate and check every document under `paths`, references included.

    Each file is checked on its own, then each document against the set, both spread over the
    cores for large sets (processes=None chooses; 1 stays in this process). progress(done,
    total) follows the files read, set_progress(done, total) the documents checked against the set. lookup_outside(type, id): where a reference the set does not
    hold may resolve (the store, on import); what it answered is `LoadedSet.outside`, and the
    documents that rely on it are named in `LoadedSet.leaning_outside`."""
    paths_found = list(json_files(paths))
    documents, locations, problems = {}, {}, []
    # Invalid documents still answer lookups, so one broken file is reported
    # once rather than again as a dangling reference in everything citing it.
    known = {}
    for path, document, errors in fork_map(_load_file, paths_found, processes=processes, progress=progress):
        if document is None:
            problems.extend(Problem(str(path), "", message) for _, message in errors)
            continue
        if isinstance(document.get("type"), str) and isinstance(document.get("id"), str):
            known.setdefault(key_of(document), document)
        if errors:
            problems.extend(Problem(str(path), field, message) for field, message in errors)
            continue
        key = key_of(document)
        if key in documents:
            problems.append(Problem(str(path), "id", f"{key} is already defined in {locations[key]}."))
            continue
        documents[key] = document
        locations[key] = path

    def check(key):
        """The document's reference errors against the set, and the keys it missed there."""
        missed = set()

        def lookup(type_name, id_):
            found = known.get(f"{type_name}/{id_}")
            if found is None:
                missed.add(f"{type_name}/{id_}")
            return found

        return reference_errors(documents[key], lookup), missed

    keys = list(documents)
    checked = fork_map(check, keys, processes=processes, progress=set_progress)
    # Only what the set misses is looked up outside it, here in this process (a store's
    # connections are not shared with forked workers), and only its documents checked again.
    outside = {}
    for missing in sorted(set().union(*(missed for _, missed in checked))) if lookup_outside else ():
        found = lookup_outside(*missing.split("/", 1))
        if found is not None:
            outside[missing] = found
    leaning = [key for key, (_, missed) in zip(keys, checked) if not missed.isdisjoint(outside)]
    rechecked = dict(zip(leaning, fork_map(
        lambda key: reference_errors(documents[key], lambda t, i: known.get(f"{t}/{i}") or outside.get(f"{t}/{i}")),
        leaning, processes=processes)))
    for key, (errors, _) in zip(keys, checked):
        errors = rechecked.get(key, errors)
        problems.extend(Problem(str(locations[key]), field, message) for field, message in errors)
    return LoadedSet(documents, locations, problems, len(paths_found), outside, set(leaning))


def _load_file(path):
    """(path, document, errors) for one file; document None when the file cannot be read as one."""
    try:
        raw = read_document_file(path)
    except DocumentFileError as error:
        return path, None, [("", str(error))]
    document, errors = load_document(raw)
    return path, document, errors + check_location(path, document)


def canonical_bytes(document):
    """The byte-stable file form: sorted keys, 2-space indent, trailing newline."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def content_path(root, document):
    return Path(root) / TYPE_FOLDERS[document["type"]] / f"{document['id']}.json"
