"""Markup safety: content can never carry running code to a consumer (issue 9.2).

Markdown fields refuse raw HTML and links other than http, https, mailto or relative; plain-text
fields refuse anything that starts a tag; every JSON body escapes <, > and &. Each payload of an
XSS corpus is refused when written, naming the field, or inert in every delivered form.
"""
import html.parser
import json
import re
import subprocess
import sys

import pytest
import requests
from markdown_it import MarkdownIt

from api.services.documents import Documents
from api.app import create_app
from api.store.keys import KeyStore
from conftest import ROOT
from servers import serving
from schemas.markup import link_scheme, markdown_problems, plain_text_problems
from xss_corpus import PAYLOADS

FAQ = "/v1/editorial/documents/faq/hemgenix-how-does-it-work"
PREVIEW_FAQ = "/v1/preview/faqs/hemgenix-how-does-it-work"
PREVIEW_JSONLD = "/v1/preview/articles/how-does-hemgenix-work/jsonld"


# --- what consumers would render ---------------------------------------------------------------

# What markdown-it's CommonMark renderer produces from Markdown, and the attributes it writes.
MARKDOWN_TAGS = {"p", "em", "strong", "a", "img", "code", "pre", "ul", "ol", "li", "blockquote", "hr", "br",
                 "h1", "h2", "h3", "h4", "h5", "h6"}
MARKDOWN_ATTRIBUTES = {"href", "src", "alt", "title", "start", "class"}


def browser_scheme(url):
    """The scheme a browser's URL parser finds: tab and line breaks removed, C0 and space trimmed."""
    url = re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(0x21))))
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", url)
    return match.group(1).lower() if match else None


class ActiveContent(html.parser.HTMLParser):
    """Collects whatever in an HTML fragment could run: unknown tags, event handlers, scripts in
    URLs, comments and other markup a renderer passed through."""

    def __init__(self, allowed_tags):
        super().__init__(convert_charrefs=True)
        self.allowed_tags, self.found = allowed_tags, []

    def handle_starttag(self, tag, attrs):
        if tag not in self.allowed_tags:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            if name not in MARKDOWN_ATTRIBUTES:
                self.found.append(f"{tag} {name}=")
            elif name in ("href", "src") and browser_scheme(value or "") not in (None, "http", "https", "mailto"):
                self.found.append(f"{tag} {name}={value}")

    def handle_endtag(self, tag):
        if tag not in self.allowed_tags:
            self.found.append(f"</{tag}>")

    def handle_comment(self, data):
        self.found.append("<!--")

    def handle_decl(self, decl):
        self.found.append("<!decl>")

    def handle_pi(self, data):
        self.found.append("<?pi>")

    def unknown_decl(self, data):
        self.found.append("<![...]>")


def active_content(fragment, allowed_tags=frozenset()):
    parser = ActiveContent(allowed_tags)
    parser.feed(fragment)
    parser.close()
    return parser.found


def rendered_by_consumer(markdown):
    """HTML as a consumer renders Markdown: markdown-it's CommonMark preset, HTML passed through."""
    return MarkdownIt("commonmark").render(markdown)


def assert_inert_markdown(text):
    assert active_content(rendered_by_consumer(text), MARKDOWN_TAGS) == [], text


def assert_inert_plain_text(text):
    """Even pasted into HTML without escaping, plain text makes no element, comment or declaration."""
    assert active_content(text) == [], text


def assert_script_safe(body: bytes):
    assert not re.search(rb"[<>&]", body), body[:300]


# --- the checks themselves ---------------------------------------------------------------------

@pytest.mark.parametrize("markdown", [
    "<img alt=\"<\" src=x onerror=alert(1)>",
    "<a title=\"<\" href=\"javascript:alert(1)\">x</a>",
    "<svg/onload=alert(1)>",
    "<img/src=x/onerror=alert(1)>",
    "Text <!-- a comment --> more",
    "<![CDATA[x]]>",
    "<?php echo 1; ?>",
    "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))",
    "[x](\tjavascript:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](&#x6A;avascript:alert(1))",
    "[x](data:text/html,<script>alert(1)</script>)",
    "[x](vbscript:msgbox(1))",
    "[x][ref]\n\n[ref]: javascript:alert(1)",
    "<javascript:alert(1)>",
    "![x](data:image/png;base64,iVBORw0KGgo=)",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "A bell \x07 rings",
])
def test_markdown_that_could_run_is_refused(markdown):
    assert markdown_problems(markdown)


@pytest.mark.parametrize("markdown", [
    "Factor IX activity < 5% means severe disease; > 40% is normal.",
    "Dose: 2 × 10^13 genome copies per kg, once.",
    "See [the label](https://www.fda.gov/media/163467/download) or [our FAQ](/v1/faqs) or [below](#risks).",
    "Write to <mailto:info@example.org> or <https://example.org>.",
    "[Ref][1]\n\n[1]: https://example.org \"Title\"",
    "Code like `<script>` is shown, not run.",
    "```\n<b>bold?</b>\n```",
    "AT&T & friends; 3 <4",
    "Tabs\tand\nnewlines are fine.",
])
def test_ordinary_markdown_is_accepted(markdown):
    assert markdown_problems(markdown) == []


@pytest.mark.parametrize("text", ["</script><script>alert(1)</script>", "<b>bold</b>", "a<b", "<!-- x", "<?xml",
                                  "<!DOCTYPE html>", "</p>", "Null\x00byte"])
def test_plain_text_refuses_markup(text):
    assert plain_text_problems(text)


@pytest.mark.parametrize("text", ["x < 5", "a <= b", "I <3 it", "<5 kg", "A & B", "1 > 0", "He said \"no\"",
                                  "Factor IX (<1%)"])
def test_plain_text_keeps_comparisons_and_symbols(text):
    assert plain_text_problems(text) == []


@pytest.mark.parametrize("url,scheme", [
    ("javascript:x", "javascript"), (" JaVaScRiPt:x", "javascript"), ("java\tscript:x", "javascript"),
    ("java\nscript:x", "javascript"), ("&#106;avascript:x", "javascript"), ("jav&#x09;ascript:x", "javascript"),
    ("\x01javascript:x", "javascript"), ("https://a.org", "https"), ("/relative:path", None), ("page#x:y", None),
    ("mailto:a@b.org", "mailto"), ("", None),
])
def test_link_scheme_is_read_as_browsers_read_it(url, scheme):
    assert link_scheme(url) == scheme


# --- the corpus through the editorial API -------------------------------------------------------

@pytest.fixture
def editorial_app(content_db):
    return create_app({"MEDKB_DB": str(content_db), "MEDKB_CHECK_INTERVAL": 0})


@pytest.fixture
def admin(content_db):
    return {"Authorization": f"Bearer {KeyStore(content_db).create('admin', 'ada')[1]}"}


def body_bytes(response):
    """The body of a Flask test response or a requests response."""
    return response.content if isinstance(response, requests.Response) else response.data


def patch_field(send, admin, field, value):
    """PATCH one field of the FAQ; returns the response (status, JSON body)."""
    # A compressed answer carries a weak tag (W/"..."), which If-Match's strong comparison never
    # matches; the strong tag inside it is the revision's.
    etag = send("GET", FAQ, headers=admin).headers["ETag"].removeprefix("W/")
    return send("PATCH", FAQ, json={field: value},
                headers={**admin, "If-Match": etag, "Content-Type": "application/merge-patch+json"})


def check_payload(send, admin, field, payload):
    """Refused with 422 naming `field`, or accepted and inert in every delivered form."""
    response = patch_field(send, admin, field, payload)
    body = body_bytes(response)
    assert_script_safe(body)
    if response.status_code == 422:
        assert list(json.loads(body)["errors"]) == [field], body
        return "refused"
    assert response.status_code == 200, body
    stored = json.loads(body)["document"][field]
    assert stored == payload
    if field == "answer":
        assert_inert_markdown(stored)
    else:
        assert_inert_plain_text(stored)
    for path in (PREVIEW_FAQ, PREVIEW_JSONLD, "/v1/preview/search?q=alert"):
        delivered = send("GET", path, headers=admin)
        assert delivered.status_code == 200
        assert_script_safe(body_bytes(delivered))
    return "inert"


@pytest.mark.parametrize("field", ["answer", "question"])
def test_every_corpus_payload_is_refused_or_inert(editorial_app, admin, field):
    client = editorial_app.test_client()

    def send(method, path, **kwargs):
        return client.open(path, method=method, **kwargs)

    outcomes = {payload: check_payload(send, admin, field, payload) for payload in PAYLOADS}
    refused = [payload for payload, outcome in outcomes.items() if outcome == "refused"]
    assert len(refused) >= 0.7 * len(PAYLOADS), "the corpus is mostly markup, refused in either kind of field"
    if field == "question":  # Markdown may show markup inside `code`; plain text never has any
        assert all(outcomes[payload] == "refused" for payload in PAYLOADS if re.search(r"<[A-Za-z/!?]", payload))


def test_corpus_through_a_real_server(content_db, admin):
    with serving(content_db, workers=1) as base, requests.Session() as session:
        def send(method, path, **kwargs):
            return session.request(method, base + path, timeout=30, **kwargs)

        for payload in PAYLOADS:
            check_payload(send, admin, "answer", payload)
        response = send("GET", PREVIEW_FAQ, headers=admin)
        assert response.headers["Content-Type"] == "application/json"


# --- every JSON body is safe inside <script> ----------------------------------------------------

SYMBOLS = "Severe if factor IX < 1% & moderate if 1-5%; > 40% is normal."


@pytest.fixture
def published_with_symbols(content_db):
    """The shipped content, with an FAQ answer, a question and a product summary holding <, > and &."""
    from api.store.store import Store

    store = Store(content_db, durable=False)
    faq = store.head("faq", "hemgenix-how-does-it-work")
    Documents(store).write(dict(faq.content, answer=SYMBOLS, question="Is < 1% & > 0 severe?"),
                expected_revision=faq.revision, actor="test", publish=True)
    product = store.head("product", "hemgenix")
    Documents(store).write(dict(product.content, summary=f"`<b>` {SYMBOLS}"), expected_revision=product.revision, actor="test",
                publish=True)
    return content_db


JSON_READS = ["/v1/faqs/hemgenix-how-does-it-work", "/v1/faqs", "/v1/products/hemgenix",
              "/v1/products/hemgenix?include=faqs,mechanism&fields=name,summary", "/v1/products/hemgenix/faqs",
              "/v1/products/alprolix/related", "/v1/articles/how-does-hemgenix-work/jsonld",
              "/v1/articles/how-does-hemgenix-work?include=faqs", "/v1/feed", "/v1/search?q=severe%20%3Cb%3E",
              "/v1/nothing/%3Cscript%3E", "/v1/search?q=%3Cscript%3E&limit=1000", "/readyz"]


def test_every_json_body_escapes_angle_brackets_and_ampersands(published_with_symbols):
    client = create_app({"MEDKB_DB": str(published_with_symbols), "TESTING": True}).test_client()
    for path in JSON_READS:
        response = client.get(path)
        assert response.status_code < 500, path
        assert_script_safe(response.data)
    faq = client.get("/v1/faqs/hemgenix-how-does-it-work")
    assert b"\\u003c 1% \\u0026 moderate" in faq.data and faq.get_json()["answer"] == SYMBOLS, "same value"
    jsonld = client.get("/v1/articles/how-does-hemgenix-work/jsonld").get_json()
    assert SYMBOLS in json.dumps(jsonld, ensure_ascii=False)


def test_search_snippets_escape_content_and_mark_only_matches(published_with_symbols):
    client = create_app({"MEDKB_DB": str(published_with_symbols), "TESTING": True}).test_client()
    results = client.get("/v1/search?q=severe").get_json()["results"]
    snippets = [result["snippet"] for result in results]
    assert any("&lt; 1% &amp; moderate" in snippet for snippet in snippets), snippets
    for snippet in snippets:
        assert active_content(snippet, {"mark"}) == [], snippet
        assert re.sub(r"</?mark>", "", snippet).count("<") == 0


def test_json_bodies_are_script_safe_through_a_real_server(published_with_symbols):
    with serving(published_with_symbols, workers=1) as base:
        for path in ("/v1/faqs/hemgenix-how-does-it-work", "/v1/articles/how-does-hemgenix-work/jsonld",
                     "/v1/feed", "/v1/search?q=severe"):
            response = requests.get(base + path, timeout=30)  # default headers: compressed bodies
            assert response.status_code == 200, path
            assert_script_safe(response.content)
        assert requests.get(base + "/v1/faqs/hemgenix-how-does-it-work", timeout=30).json()["answer"] == SYMBOLS


# --- files on the command line ------------------------------------------------------------------

def test_validate_names_file_and_field_of_markup(kb_folder):
    faq = kb_folder / "faqs" / "drug-q1.json"
    document = json.loads(faq.read_text())
    faq.write_text(json.dumps(dict(document, answer="See [this](javascript:alert(1)).", question="<b>Q1</b>?")))
    result = subprocess.run([sys.executable, "-m", "api.cli", "validate", str(kb_folder)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{faq}: answer: Links to 'javascript:' are not allowed; use http, https, mailto or a relative link." in lines
    assert any(line.startswith(f"{faq}: question: Markup is not allowed in plain text") for line in lines)
    assert "Traceback" not in result.stderr


def test_shipped_content_is_valid_under_the_markup_rules():
    result = subprocess.run([sys.executable, "-m", "api.cli", "validate", "content"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("url,valid", [
    ("https://example.org/\"><script>alert(1)</script>", False), ("https://example.org/a<b", False),
    ("https://example.org/a`b", False), ("https://example.org/a b", False), ("javascript://example.org/%0aalert(1)", False),
    ("https://example.org/path?q=1&r=2", True), ("https://example.org/%3Cscript%3E", True),
])
def test_urls_cannot_break_out_of_an_attribute(documents, url, valid):
    from schemas.documents import DOCUMENT_SCHEMAS

    source = next(document for document in documents if document["type"] == "source")
    errors = DOCUMENT_SCHEMAS["source"]().validate(dict(source, url=url))
    assert ("url" not in errors) == valid, errors
