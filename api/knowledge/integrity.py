"""Checks across documents that keep citations honest and reviews real.

`integrity_errors(document, lookup)` gives (field, message) pairs, like reference errors:
a citation's locator must be one its source declares; a fact resting only on a secondary
source must say whether it was verified; a label fact must cite a primary source; a
verification names a real source; a medical reviewer is a clinician in the reviewer role
and never the author; a discrepancy points at a statement that exists.
"""
from schemas.documents import SECONDARY_SOURCE_KINDS

PRIMARY_KINDS = ("label", "trial", "regulator_page", "registry")
CLINICIAN_CREDENTIALS = ("MD", "DO", "MBBS", "MBChB", "PharmD", "RPh", "RN", "NP", "PA-C", "DNP", "APRN")


def integrity_errors(document, lookup):
    errors = []
    sources = {}

    def source(id_):
        if id_ not in sources:
            sources[id_] = lookup("source", id_)
        return sources[id_]

    for path, node in _objects(document):
        citations = node.get("citations")
        if isinstance(citations, list):
            errors += _citation_errors(path, citations, source)
            errors += _secondary_without_verification(path, node, citations, source)
        verification = node.get("verification")
        if isinstance(verification, dict) and isinstance(verification.get("source"), str):
            if source(verification["source"]) is None:
                errors.append((_join(path, "verification.source"),
                               f"refers to source/{verification['source']}, which does not exist."))
    for key in ("summary_citations",):
        if isinstance(document.get(key), list):
            errors += _citation_errors(key, document[key], source, field="")
    facts = document.get("label_facts") if document.get("type") == "product" else None
    if isinstance(facts, dict):
        errors += _label_facts_cite_primary_sources(facts, source)
    errors += _reviewer_errors(document, lookup)
    def current(type_name, id_):
        # A statement in this very document is checked against the version being written.
        if (type_name, id_) == (document.get("type"), document.get("id")):
            return document
        return lookup(type_name, id_)

    for index, discrepancy in enumerate(document.get("discrepancies") or [] if document.get("type") == "product" else []):
        for number, ref in enumerate(discrepancy.get("article_statements") or []):
            problem = _statement_problem(ref, current)
            if problem:
                errors.append((f"discrepancies.{index}.article_statements.{number}", problem))
    return errors


def _join(path, name):
    return f"{path}.{name}" if path else name


def _objects(node, path=""):
    """Every dict in the document with its dotted path, the document itself first. Only objects
    and lists are visited, and only their paths made: most of a document is strings, and
    visiting each was most of the time of checking a set's references."""
    found = []

    def visit(node, path):
        if isinstance(node, dict):
            found.append((path, node))
            children = node.items()
        else:
            children = ((str(index), item) for index, item in enumerate(node))
        for key, value in children:
            if isinstance(value, (dict, list)):
                visit(value, _join(path, key))

    if isinstance(node, (dict, list)):
        visit(node, path)
    return found


def _citation_errors(path, citations, source, field="citations"):
    errors = []
    for index, citation in enumerate(citations):
        if not isinstance(citation, dict) or not isinstance(citation.get("source"), str):
            continue
        cited = source(citation["source"])
        locator = citation.get("locator")
        if cited is None or locator is None:
            continue  # a dangling source is reported as a reference error
        declared = cited.get("locators") or []
        if locator not in declared:
            where = _join(_join(path, field), f"{index}.locator") if field else f"{path}.{index}.locator"
            errors.append((where, f"'{locator}' is not a locator source/{citation['source']} declares"
                                  + (f" (it declares: {'; '.join(declared)})." if declared else " (it declares none).")))
    return errors


def _secondary_without_verification(path, node, citations, source):
    kinds = [(source(c["source"]) or {}).get("kind") for c in citations
             if isinstance(c, dict) and isinstance(c.get("source"), str)]
    if kinds and all(kind in SECONDARY_SOURCE_KINDS for kind in kinds) and not node.get("verification"):
        return [(_join(path, "verification"), "Cites only secondary sources; say whether the fact was verified "
                                              "against a primary source (status verified, with source and date) "
                                              "or not (status unverified).")]
    return []


def _label_facts_cite_primary_sources(facts, source):
    errors = []
    for group, items in facts.items():
        for index, fact in enumerate(items if isinstance(items, list) else []):
            for number, citation in enumerate(fact.get("citations") or [] if isinstance(fact, dict) else []):
                cited = source(citation.get("source")) if isinstance(citation, dict) else None
                if cited is not None and cited.get("kind") not in PRIMARY_KINDS:
                    errors.append((f"label_facts.{group}.{index}.citations.{number}.source",
                                   f"A label fact must cite a label, trial, regulator or registry source; "
                                   f"source/{citation['source']} is a {cited.get('kind')}."))
    return errors


def is_clinician(person):
    return any(credential.strip().upper() in {c.upper() for c in CLINICIAN_CREDENTIALS}
               for credential in person.get("credentials") or [] if isinstance(credential, str))


def _reviewer_errors(document, lookup):
    reviewer_id = document.get("medical_reviewer")
    if document.get("type") not in ("article", "product") or not isinstance(reviewer_id, str):
        return []
    if reviewer_id == document.get("author"):
        return [("medical_reviewer", "The author cannot be the medical reviewer of their own content.")]
    reviewer = lookup("person", reviewer_id)
    if reviewer is None:
        return []  # reported as a dangling reference
    problems = []
    if "medical_reviewer" not in (reviewer.get("roles") or []):
        problems.append("does not have the medical_reviewer role")
    if not is_clinician(reviewer):
        problems.append(f"has no clinician credential ({', '.join(CLINICIAN_CREDENTIALS)})")
    return [("medical_reviewer", f"person/{reviewer_id} {' and '.join(problems)}.")] if problems else []


def resolve_field(document, field):
    """The value at a dotted path like 'sections.1.body', or None."""
    node = document
    for part in field.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _statement_problem(ref, lookup):
    if not isinstance(ref, dict) or not isinstance(ref.get("document"), str) or "/" not in ref["document"]:
        return None
    type_name, id_ = ref["document"].split("/", 1)
    target = lookup(type_name, id_)
    if target is None:
        return f"refers to {ref['document']}, which does not exist."
    field = ref.get("field")
    if field and not isinstance(resolve_field(target, field), str):
        return f"{ref['document']} has no text at {field}."
    return None
