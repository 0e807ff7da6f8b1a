"""Markdown as patients read it, and word-level differences between two texts. No Flask here."""
import difflib
import re

from markdown_it import MarkdownIt
from markupsafe import Markup

SAFE_SCHEMES = ("http://", "https://", "mailto:")

# html=False: raw HTML in content is shown as text, never interpreted. Images are off because
# the console loads nothing from outside (its CSP would block them anyway).
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")
_markdown.validateLink = lambda url: url.strip().lower().startswith(SAFE_SCHEMES)


def markdown(text):
    """Sanitized HTML for a Markdown string: everything else in it is escaped."""
    if not isinstance(text, str):
        return Markup("")
    return Markup(_markdown.render(text))


# A word with the space before it: a run of changed words then reads as one marked phrase.
_TOKEN = re.compile(r"\s*\w+|\s*[^\w\s]|\s+")


def word_diff(old, new):
    """[(kind, text)] with kind "same", "removed" or "added": what changed, word by word."""
    a, b = _TOKEN.findall(old or ""), _TOKEN.findall(new or "")
    parts = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            parts.append(("same", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            parts.append(("removed", "".join(a[i1:i2])))
        if j2 > j1:
            parts.append(("added", "".join(b[j1:j2])))
    return parts


# Fields the store stamps on every revision: a difference there is not an edit anyone made.
STAMPED = ("revision", "updated_at")


def flatten(node, path=""):
    """{dotted path: scalar} for every leaf of a document, in document order."""
    leaves = {}
    if isinstance(node, dict):
        for key, value in node.items():
            if not path and key in STAMPED:
                continue
            leaves.update(flatten(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            leaves.update(flatten(value, f"{path}.{index}" if path else str(index)))
        if not node:
            leaves[path] = []
    else:
        leaves[path] = node
    return leaves


def field_diff(old, new):
    """What changed between two documents, field by field; prose changes word by word.

    [{"field", "change": "added"|"removed"|"changed", "old", "new", "words"}], in the newer
    document's order, with fields only the older one had at the end."""
    before, after = flatten(old or {}), flatten(new or {})
    changes = []
    for field in [*after, *(name for name in before if name not in after)]:
        was, now = before.get(field), after.get(field)
        if field in before and field in after and was == now:
            continue
        change = "added" if field not in before else "removed" if field not in after else "changed"
        prose = isinstance(was, str) and isinstance(now, str) and (" " in was or " " in now)
        changes.append({"field": field, "change": change, "old": was, "new": now,
                        "words": word_diff(was, now) if prose else None})
    return changes
