"""What text fields may contain, so that no consumer's renderer can turn content into running code.

Consumers render Markdown with CommonMark parsers (markdown-it and its ports) and drop plain
text into HTML templates, JSON-LD `<script>` blocks and native views. Content is checked when it
is written, with the parser consumers use, rather than trusting every consumer to sanitize.
"""
import functools
import html
import re

ALLOWED_SCHEMES = ("http", "https", "mailto")
# A tag, end tag, comment, CDATA section, declaration or processing instruction starts with "<"
# and one of these; "x < 5" and "<3" do not, so plain text keeps its comparisons.
MARKUP_START = re.compile(r"<[A-Za-z/!?]")
# C0 controls other than tab and line breaks have no place in prose, and NUL truncates strings
# in some consumers.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Browsers drop ASCII tab and line breaks anywhere in a URL and trim C0 controls and spaces around
# it; removing every invisible character is stricter than any browser, so never more permissive.
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\s\u00ad\u200b-\u200f\u2028-\u202e\u2060-\u2064\ufeff]+")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")


@functools.cache
def _parser():
    # Imported on first use: most text has nothing to parse, and every CLI command and worker
    # process imports the schemas at start-up.
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark")
    # markdown-it silently demotes links it deems unsafe to text, and percent-encodes the rest;
    # other renderers differ, so see every destination exactly as written and judge it here.
    parser.validateLink = lambda url: True
    parser.normalizeLink = lambda url: url
    return parser


def link_scheme(url):
    """The scheme a browser would see in `url` (lowercase), or None for a relative link."""
    for _ in range(3):  # entities inside entities ("&amp;#106;") decode one level per pass
        decoded = html.unescape(url)
        if decoded == url:
            break
        url = decoded
    match = _SCHEME.match(_INVISIBLE.sub("", url).lower())
    return match.group(1) if match else None


def _link_problem(url):
    scheme = link_scheme(url)
    if scheme is not None and scheme not in ALLOWED_SCHEMES:
        return f"Links to '{scheme}:' are not allowed; use http, https, mailto or a relative link."
    return None


def plain_text_problems(value):
    """Why `value` is not safe plain text (a list of messages; empty when it is)."""
    problems = []
    if MARKUP_START.search(value):
        problems.append("Markup is not allowed in plain text: '<' may not be followed by a letter, '/', '!' or '?'.")
    if CONTROL.search(value):
        problems.append("Control characters are not allowed.")
    return problems


def markdown_problems(value):
    """Why `value` is not safe Markdown: raw HTML, unsafe link schemes, control characters."""
    problems = []
    if CONTROL.search(value):
        problems.append("Control characters are not allowed.")
    if not any(mark in value for mark in "<&]"):
        return problems  # no tag, entity, link or image can be written without one of these
    env = {}
    tokens = _parser().parse(value, env)
    found = set()
    for token in _walk(tokens):
        if token.type in ("html_block", "html_inline"):
            found.add("Raw HTML is not allowed (tags, comments, CDATA, processing instructions); write Markdown.")
        elif token.type == "text" and MARKUP_START.search(token.content):
            # CommonMark shows "<svg/onload=...>" or "&lt;b&gt;" as text; lenient renderers do not.
            found.add("Text that looks like an HTML tag is not allowed; put code in `backticks`.")
        elif token.type == "link_open":
            found.add(_link_problem(token.attrGet("href") or ""))
        elif token.type == "image":
            found.add(_link_problem(token.attrGet("src") or ""))
    # A reference definition nobody uses renders nothing here, but other renderers may differ.
    for reference in (env.get("references") or {}).values():
        found.add(_link_problem(reference.get("href") or ""))
    return problems + sorted(message for message in found if message)


def _walk(tokens):
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)
