"""Documents as HTML forms and back, driven by the marshmallow schemas (the one definition of
every document): what each field is, how it is edited and how it reads to a patient.

Form inputs are named by the field's dotted path, the same paths validation errors and lint
findings use ("steps.1.body", "citations.0.source"), so every message lands at its input.
A list says how many items it has in "<path>.__n"; buttons named "op" add, remove and move items
("add:steps", "remove:steps.2", "up:steps.2") and re-render the form without saving.
"""
import copy
import re
from dataclasses import dataclass, field

from marshmallow import fields, validate

from schemas.documents import DOCUMENT_SCHEMAS, REFERENCES
from schemas.fields import CitationSchema

from api.knowledge.documents import TOO_DEEP, parse_json_text, value_problems
from api.services.workflow import TITLE_FIELDS, title_of  # noqa: F401 (title_of: the pages' name for a document)

# Stamped by the store or fixed by the URL: shown, never edited in the form.
ENVELOPE = ("type", "id", "schema_version", "revision", "locale", "updated_at", "translations")
# The claim a document's own `citations` support.
CITED_FIELD = {"faq": "answer"}
LIST_COUNT = "__n"


@dataclass
class Spec:
    name: str
    kind: str  # text, markdown, choice, number, date, url, reference, json, list, object
    label: str
    required: bool = False
    options: tuple = ()
    target: str | None = None  # reference: the type of document it names
    children: list = field(default_factory=list)  # object
    item: "Spec | None" = None  # list
    description: str = ""

    @property
    def is_citations(self):
        return self.kind == "list" and self.name == "citations"


def label_of(name):
    return name.replace("_", " ").capitalize()


def _reference_targets(type_name):
    """{field path without indices: target type} for the references of one document type."""
    return {path.replace("[]", ""): target for path, target in REFERENCES.get(type_name, [])}


def _spec(name, marshmallow_field, references, path):
    required = marshmallow_field.required
    label = label_of(name)
    description = marshmallow_field.metadata.get("description", "")
    if isinstance(marshmallow_field, fields.List):
        item = _spec(name, marshmallow_field.inner, references, path)
        return Spec(name, "list", label, required, item=item, description=description)
    if isinstance(marshmallow_field, fields.Nested):
        schema = marshmallow_field.schema
        children = [_spec(child, f, references, f"{path}.{child}") for child, f in schema.fields.items()]
        if isinstance(schema, CitationSchema):
            children[0].kind, children[0].target = "reference", "source"
        return Spec(name, "object", label, required, children=children, description=description)
    if path in references:
        return Spec(name, "reference", label, required, target=references[path], description=description)
    if isinstance(marshmallow_field, fields.Integer):
        return Spec(name, "number", label, required, description=description)
    if isinstance(marshmallow_field, fields.Date):
        return Spec(name, "date", label, required, description=description)
    if isinstance(marshmallow_field, fields.Url):
        return Spec(name, "url", label, required, description=description)
    if isinstance(marshmallow_field, fields.String):
        validators = marshmallow_field.validators
        choices = [v.choices for v in validators if isinstance(v, validate.OneOf)]
        if choices:
            return Spec(name, "choice", label, required, options=tuple(choices[0]), description=description)
        markdown = any(getattr(v, "__name__", "") == "safe_markdown" for v in validators)  # schemas.fields.Markdown
        return Spec(name, "markdown" if markdown else "text", label, required, description=description)
    return Spec(name, "json", label, required, description=description)


_SPECS = {}


def specs_for(type_name):
    """The editable fields of a document type, in the schema's order."""
    if type_name not in _SPECS:
        schema = DOCUMENT_SCHEMAS[type_name]()
        references = _reference_targets(type_name)
        specs = [_spec(name, f, references, name) for name, f in schema.fields.items() if name not in ENVELOPE]
        # What patients read comes first, in the schema's order; ids, numbers and dates after it.
        title = TITLE_FIELDS[type_name]
        _SPECS[type_name] = sorted(specs, key=lambda spec: (
            0 if spec.name == title else 1 if spec.kind in ("markdown", "text", "object", "list") else 2))
    return _SPECS[type_name]


# --- form → document --------------------------------------------------------


class FormErrors(ValueError):
    """Inputs that cannot even be read (a list count that is not a number, JSON that does not parse)."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{path}: {message}" for path, message in errors))
        self.errors = errors


def _scalar(spec, raw, errors, path):
    text = raw.replace("\r\n", "\n")  # browsers send textarea line breaks as CRLF
    if spec.kind != "markdown":
        text = text.strip()
    if not text.strip():
        return None
    if spec.kind == "number":
        try:
            return int(text)
        except ValueError:
            return text  # the schema names the problem at the field: "Not a valid integer."
    if spec.kind == "json":
        try:
            value = parse_json_text(text)
        except ValueError as error:
            errors.append((path, f"Not valid JSON: {error}."))
            return None
        except RecursionError:
            errors.append((path, TOO_DEEP))
            return None
        # What the store cannot keep (a lone surrogate from a \ud800 escape, numbers beyond 2^53,
        # deep nesting) is refused here, before the page renders it back.
        problems = value_problems(value)
        errors.extend((f"{path}.{field}" if field != "_document" else path, message) for field, message in problems)
        return None if problems else value
    return text


_ABSENT = object()


def _read(spec, form, path, original, errors):
    if spec.kind == "list":
        count = form.get(f"{path}.{LIST_COUNT}")
        if count is None:
            return original  # not on the form: left as it was
        if not (count.isascii() and count.isdigit()) or int(count) > 500:
            errors.append((path, "The form's item count is not a number; reload the page."))
            return original
        items = original if isinstance(original, list) else []
        values = [_read(spec.item, form, f"{path}.{index}", items[index] if index < len(items) else _ABSENT, errors)
                  for index in range(int(count))]
        values = [value for value in values if value is not None and value is not _ABSENT]
        if values and isinstance(values[0], dict) and "position" in {c.name for c in spec.item.children}:
            values = [{**value, "position": index} for index, value in enumerate(values, start=1)]
        return values or None
    if spec.kind == "object":
        base = original if isinstance(original, dict) else {}
        result = dict(base)
        for child in spec.children:
            value = _read(child, form, f"{path}.{child.name}", base.get(child.name, _ABSENT), errors)
            if value is None or value is _ABSENT:
                result.pop(child.name, None)
            else:
                result[child.name] = value
        return result or None
    raw = form.get(path)
    if raw is None:
        return original
    return _scalar(spec, raw, errors, path)


def document_from_form(head, form):
    """The document a submitted form describes, starting from the revision it was rendered from.
    Raises FormErrors when an input cannot be read at all."""
    document = copy.deepcopy(head)
    errors = []
    for spec in specs_for(head["type"]):
        value = _read(spec, form, spec.name, document.get(spec.name, _ABSENT), errors)
        if value is None or value is _ABSENT:
            document.pop(spec.name, None)
        else:
            document[spec.name] = value
    if errors:
        raise FormErrors(errors)
    return document


# --- list operations --------------------------------------------------------

_OP = re.compile(r"(add|remove|up|down):([a-z_]+(?:\.(?:[a-z_]+|\d+))*)")


def _spec_at(type_name, parts):
    specs, spec = specs_for(type_name), None
    for part in parts:
        if part.isdigit():
            if spec is None or spec.kind != "list":
                return None
            spec = spec.item
            specs = spec.children
            continue
        spec = next((s for s in specs if s.name == part), None)
        if spec is None:
            return None
        specs = spec.children
    return spec


def _container(document, parts, create):
    """The value at a path; with create, a missing list at the end of it starts empty."""
    node = document
    for depth, part in enumerate(parts, start=1):
        key = int(part) if part.isdigit() else part
        if isinstance(node, list):
            if not isinstance(key, int) or key >= len(node):
                return None
            node = node[key]
        elif isinstance(node, dict):
            if key not in node:
                if not (create and depth == len(parts)):
                    return None
                node[key] = []
            node = node[key]
        else:
            return None
    return node


def empty_item(spec):
    return {} if spec.kind == "object" else ""


def apply_op(document, op):
    """Apply one list operation to the document in place. False if the operation names nothing."""
    match = _OP.fullmatch(op or "")
    if not match:
        return False
    verb, path = match.groups()
    parts = path.split(".")
    if verb == "add":
        spec = _spec_at(document["type"], parts)
        items = _container(document, parts, create=True)
        if spec is None or spec.kind != "list" or not isinstance(items, list):
            return False
        items.append(empty_item(spec.item))
        if spec.item.kind == "object" and "position" in {c.name for c in spec.item.children}:
            items[-1]["position"] = len(items)
        return True
    if not parts[-1].isdigit():
        return False
    items, index = _container(document, parts[:-1], create=False), int(parts[-1])
    if not isinstance(items, list) or index >= len(items):
        return False
    if verb == "remove":
        items.pop(index)
    else:
        other = index - 1 if verb == "up" else index + 1
        if not 0 <= other < len(items):
            return False
        items[index], items[other] = items[other], items[index]
    for position, item in enumerate(items, start=1):
        if isinstance(item, dict) and "position" in item:
            item["position"] = position
    return True


# --- messages by field -------------------------------------------------------


def by_field(pairs):
    """{field path: [message]} from (field, message) pairs."""
    found = {}
    for path, message in pairs:
        found.setdefault(path or "_document", []).append(message)
    return found
