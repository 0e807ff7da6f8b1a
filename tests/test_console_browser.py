"""The editorial console in a real browser (Debian's Chromium driven by Playwright) against a real
`medkb serve`: the whole review story, and the ways it must not go wrong.

Each person has their own browser context (their own cookies). Every page visited is saved as a
screenshot under build/console-screenshots/ (git-ignored) for people to look at.
"""
import json
import os
import time

import pytest
import requests

from conftest import CHROMIUM, CONTENT, ROOT, import_documents
from servers import create_key, serving

os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (make test installs it)")

SHOTS = ROOT / "build" / "console-screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
FAQ = "faq/hemgenix-how-does-it-work"
ARTICLE_HEADLINE = json.loads((CONTENT / "articles" / "how-does-hemgenix-work.json").read_text())["headline"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from api.knowledge.documents import load_set

    db = import_documents(tmp_path_factory.mktemp("console") / "db", load_set([CONTENT]).documents.values())
    keys = {name: create_key(db, role, name) for name, role in
            [("ann", "author"), ("abe", "author"), ("rita", "reviewer"), ("paul", "publisher"), ("ada", "admin")]}
    with serving(db) as base:
        yield base, keys


@pytest.fixture(autouse=True)
def patient_expect():
    expect.set_options(timeout=30_000)  # a shared, busy machine: wait for pages, never time them


class Person:
    """One signed-in editor in their own browser context; records any dialog a page opens."""

    def __init__(self, browser, base, secret, viewport=DESKTOP, label=""):
        self.base, self.label, self.full_page = base, label, viewport == DESKTOP
        self.context = browser.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.dialogs = []
        self.page.on("dialog", self._dialog)
        self.page.goto(f"{base}/console/")
        self.page.fill("#key", secret)
        self.page.click("button:has-text('Sign in')")
        expect(self.page.locator("h1")).to_have_text("Queues")

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path):
        response = self.page.goto(f"{self.base}/console/{path}")
        assert response.status < 500
        return response

    def shot(self, name):
        SHOTS.mkdir(parents=True, exist_ok=True)
        # At phone width a whole page is a long strip nobody can read: keep the first screenful.
        self.page.screenshot(path=str(SHOTS / f"{name}{self.label}.png"), full_page=self.full_page)

    def act(self, button, **fields):
        form = self.page.locator("form.action", has=self.page.locator(f"button:has-text('{button}')"))
        for name, value in fields.items():
            form.locator(f"[name={name}]").fill(value)
        form.locator(f"button:has-text('{button}')").click()

    def close(self):
        self.context.close()


@pytest.fixture
def people(browser, site):
    base, keys = site
    opened = []

    def sign_in(name, **options):
        person = Person(browser, base, keys[name], **options)
        opened.append(person)
        return person

    yield sign_in
    for person in opened:
        person.close()


def delivered(url, ready):
    """The public answer once every worker has caught up with the commit (DESIGN: within 100 ms
    of it); a wait, not a timing: the deadline is only there so a broken publish fails the test."""
    deadline = time.monotonic() + 30
    while True:
        response = requests.get(url, timeout=10)
        if ready(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def state_of(page):
    return page.locator("section.actions .badge").first


def test_review_story_from_draft_to_the_public_api(people, site):
    base, _ = site
    ann = people("ann")
    ann.shot("01-queues")
    ann.open(f"documents/{FAQ}/edit")
    ann.shot("02-edit")
    answer = ("Hemgenix carries a working copy of the F9 gene to your liver cells. "
              "Your liver then makes Factor IX, the protein your blood needs to clot.")
    ann.page.fill("#i-answer", answer)
    ann.page.click("button[value='add:citations']")
    ann.page.select_option("select[name='citations.1.source']", "medkb-drug-facts")
    ann.page.fill("input[name='citations.1.locator']", "Hemgenix; developed by")  # a locator the source declares
    ann.page.click("button:has-text('Preview and check')")
    expect(ann.page.locator(".md-preview").first).to_contain_text("working copy of the F9 gene")
    ann.shot("03-edit-preview")
    ann.page.fill("#message", "Plainer answer; cite the drug facts")
    ann.page.click("button:has-text('Save draft')")
    expect(ann.page.locator(".alert.success")).to_contain_text("Saved as revision 2")
    ann.act("Submit for review")
    expect(state_of(ann.page)).to_have_text("in review")
    expect(ann.page.locator("form.action-approve button")).to_be_disabled()
    expect(ann.page.locator("#why-approve")).to_contain_text("You wrote this revision")

    rita = people("rita")
    queue = rita.page.locator("#queue-review")
    expect(queue).to_contain_text("How does Hemgenix work?")
    queue.locator("a", has_text="How does Hemgenix work?").click()
    expect(rita.page.locator("table.diff ins").first).to_be_visible()
    expect(rita.page.locator("table.diff")).to_contain_text("Answer")
    expect(rita.page.locator("table.diff")).to_contain_text("Citations 2 › source")
    cites = rita.page.locator("#f-answer .cites")
    expect(cites).to_contain_text("medkb drug facts")
    expect(cites).to_contain_text("Hemgenix; developed by")
    expect(rita.page.locator("section.findings")).to_be_visible()
    rita.shot("04-review")
    rita.act("Request changes", comment="Say that the infusion happens once.")
    expect(state_of(rita.page)).to_have_text("draft")

    ann.open(f"documents/{FAQ}/edit")
    ann.page.fill("#i-answer", answer + " It is given once, as a single infusion into a vein.")
    ann.page.fill("#message", "Say it is a single infusion")
    ann.page.click("button:has-text('Save draft')")
    expect(ann.page.locator(".alert.success")).to_contain_text("Saved as revision 3")
    ann.act("Submit for review")
    expect(state_of(ann.page)).to_have_text("in review")

    rita.open(f"documents/{FAQ}")
    rita.act("Approve")
    expect(state_of(rita.page)).to_have_text("approved")
    assert "single infusion" not in requests.get(f"{base}/v1/faqs/hemgenix-how-does-it-work").json()["answer"]

    paul = people("paul")
    expect(paul.page.locator("#queue-approved")).to_contain_text("How does Hemgenix work?")
    paul.open(f"documents/{FAQ}")
    paul.shot("05-publish")
    paul.act("Publish")
    expect(state_of(paul.page)).to_have_text("published")

    public = delivered(f"{base}/v1/faqs/hemgenix-how-does-it-work", lambda response: response.json()["revision"] == 3)
    assert public.status_code == 200 and public.headers["Content-Encoding"] in ("gzip", "br")
    body = public.json()
    assert body["answer"].endswith("a single infusion into a vein.") and body["revision"] == 3
    assert {"source": "medkb-drug-facts", "locator": "Hemgenix; developed by"} in body["citations"]

    paul.open(f"documents/{FAQ}/history")
    rows = paul.page.locator("table.revisions tbody tr")
    expect(rows).to_have_count(3)
    audit = paul.page.locator("table.audit")
    for text in ("request changes", "Say that the infusion happens once.", "approve", "publish", "rita", "paul"):
        expect(audit).to_contain_text(text)
    paul.shot("06-history")
    paul.page.select_option("#from", "1")
    paul.page.select_option("#to", "3")
    paul.page.click("button:has-text('Compare')")
    expect(paul.page.locator("h2#cmp-h")).to_have_text("Revision 1 compared with revision 3")
    paul.shot("07-compare")
    assert not (ann.dialogs or rita.dialogs or paul.dialogs)


def test_a_reviewer_cannot_approve_their_own_revision(people):
    ada = people("ada")  # an admin may both write and review, but never approve what they wrote
    ada.open("documents/faq/hemgenix-what-can-reduce-effectiveness/edit")
    ada.page.fill("#i-question", "What can make Hemgenix less effective for me?")
    ada.page.click("button:has-text('Save draft')")
    ada.act("Submit for review")
    approve = ada.page.locator("form.action-approve button")
    expect(approve).to_be_disabled()
    expect(ada.page.locator("#why-approve")).to_have_text("You wrote this revision: a reviewer other than you must approve it.")
    ada.shot("08-own-revision")
    # A page is no defence: post the form anyway, and the workflow service refuses it.
    approve.evaluate("button => { button.disabled = false }")
    approve.click()
    expect(ada.page.locator(".alert.error")).to_contain_text("A reviewer cannot approve a revision they wrote.")
    expect(state_of(ada.page)).to_have_text("in review")


def test_two_editors_on_one_draft_get_the_stale_page_not_a_lost_edit(people, site):
    base, keys = site
    path = "documents/faq/hemgenix-does-it-change-my-dna"
    ann, abe = people("ann"), people("abe")
    ann.open(f"{path}/edit")
    abe.open(f"{path}/edit")
    ann.page.fill("#i-question", "Does Hemgenix change my DNA? (Ann)")
    ann.page.click("button:has-text('Save draft')")
    expect(ann.page.locator(".alert.success")).to_contain_text("Saved as revision 2")

    abe.page.fill("#i-question", "Does Hemgenix alter my genes? (Abe)")
    response_status = []
    abe.page.on("response", lambda response: response_status.append(response.status))
    abe.page.click("button:has-text('Save draft')")
    stale = abe.page.locator("section.stale")
    expect(stale).to_contain_text("Someone else changed this document")
    expect(stale).to_contain_text("ann")
    expect(stale.locator("table.diff")).to_contain_text("(Ann)")
    expect(abe.page.locator("#i-question")).to_have_value("Does Hemgenix alter my genes? (Abe)")
    assert 409 in response_status
    abe.shot("09-stale")
    head = requests.get(f"{base}/v1/editorial/documents/{path.split('/', 1)[1]}",
                        headers={"Authorization": f"Bearer {keys['rita']}"}).json()
    assert head["document"]["question"] == "Does Hemgenix change my DNA? (Ann)" and head["document"]["revision"] == 2

    # Saving again is a deliberate choice made after seeing Ann's change.
    abe.page.click("button:has-text('Save draft')")
    expect(abe.page.locator(".alert.success")).to_contain_text("Saved as revision 3")

    # Workflow actions are guarded the same way: a page rendered before a step cannot take another.
    rita_a, rita_b = people("rita"), people("rita")
    ann.open(path)
    ann.act("Submit for review")
    rita_a.open(path)
    rita_b.open(path)
    rita_a.act("Request changes", comment="Keep Ann's wording.")
    expect(state_of(rita_a.page)).to_have_text("draft")
    rita_b.act("Approve")
    expect(rita_b.page.locator("section.stale")).to_contain_text("in review")
    expect(state_of(rita_b.page)).to_have_text("draft")


def test_a_form_without_its_csrf_token_is_refused(people, site):
    base, keys = site
    # A draft of its own, so archiving it touches nothing another test reads.
    faq = json.loads((CONTENT / "faqs" / "hemgenix-how-does-it-work.json").read_text())
    faq.update(id="hemgenix-csrf-check", position=9)
    faq.pop("revision")
    created = requests.post(f"{base}/v1/editorial/documents", json=faq,
                            headers={"Authorization": f"Bearer {keys['ann']}"})
    assert created.status_code == 201, created.text

    def state():
        return requests.get(f"{base}/v1/editorial/documents/faq/hemgenix-csrf-check",
                            headers={"Authorization": f"Bearer {keys['paul']}"}).json()["workflow"]["state"]

    paul = people("paul")
    path = "documents/faq/hemgenix-csrf-check"
    paul.open(path)
    form = {name: paul.page.locator(f"form.action-archive input[name={name}]").get_attribute("value")
            for name in ("action", "revision", "etag", "state", "csrf")}
    token = form.pop("csrf")
    refused = paul.context.request.post(f"{base}/console/{path}/actions", form=form, max_redirects=0)
    assert refused.status == 403
    assert "security token" in refused.text()
    forged = paul.context.request.post(f"{base}/console/{path}/actions", form={**form, "csrf": token[::-1]},
                                       max_redirects=0)
    assert forged.status == 403
    assert state() == "draft"
    # The same post with the page's token goes through: the token is what made the difference.
    accepted = paul.context.request.post(f"{base}/console/{path}/actions", form={**form, "csrf": token},
                                         max_redirects=0)
    assert accepted.status == 303, accepted.text()
    audit = requests.get(f"{base}/v1/editorial/audit?document=faq/hemgenix-csrf-check",
                         headers={"Authorization": f"Bearer {keys['paul']}"}).json()
    assert state() == "archived", audit


XSS = '<img src=x onerror="alert(1)">'


def test_script_in_content_is_inert_on_every_page(people, site):
    base, _ = site
    ann = people("ann")
    path = "documents/faq/hemgenix-what-is-the-padua-variant"
    ann.open(f"{path}/edit")
    ann.page.fill("#i-question", f"What is the Padua variant? {XSS}<script>alert(2)</script>")
    ann.page.fill("#i-answer", "Read [this](javascript:alert(3)) and <b onmouseover=alert(4)>that</b>.")
    ann.page.click("button:has-text('Save draft')")
    # Raw HTML in Markdown is refused by the schema, and the message stands at the field.
    expect(ann.page.locator("#f-answer .finding.error", has_text="Raw HTML is not allowed")).to_be_visible()
    ann.shot("10-invalid")
    # So are javascript: links and markup in plain-text fields; what is left to try is the
    # free text no schema constrains, the revision message, which every page must show inert.
    ann.page.fill("#i-answer", "Read [this](javascript:alert(3)) or [that](https://example.org/padua).")
    ann.page.click("button:has-text('Save draft')")
    expect(ann.page.locator("#f-answer .finding.error", has_text="javascript")).to_be_visible()
    expect(ann.page.locator("#f-question .finding.error")).to_be_visible()
    ann.page.fill("#i-question", "What is the Padua variant?")
    ann.page.fill("#i-answer", "Read [that](https://example.org/padua).")
    ann.page.fill("#message", f"{XSS}<script>alert(5)</script>")
    ann.page.click("button:has-text('Preview and check')")
    ann.page.click("button:has-text('Save draft')")
    expect(ann.page.locator(".alert.success")).to_be_visible()
    for page in (path, f"{path}/edit", f"{path}/history", f"{path}/compare?from=1&to=2", ""):
        ann.open(page)
        expect(ann.page.locator("body")).to_be_visible()
    ann.open(f"{path}/history")
    expect(ann.page.locator("body")).to_contain_text("<script>alert(5)</script>")
    ann.open(path)
    assert ann.page.locator("a[href^='javascript']").count() == 0
    assert ann.page.locator("a[href='https://example.org/padua']").count() == 1
    assert ann.page.locator("img").count() == 0
    ann.open(f"{path}/edit")
    ann.page.click("button:has-text('Preview and check')")
    assert ann.page.locator("a[href^='javascript'], img, script").count() == 0
    assert ann.dialogs == []


def test_pages_are_readable_at_phone_width(people):
    rita = people("rita", viewport=PHONE, label="-phone")
    rita.shot("01-queues")
    rita.open("documents/faq/hemgenix-what-can-reduce-effectiveness")
    rita.shot("04-review")
    for page in ("documents/mechanism/hemgenix-mechanism", "documents/mechanism/hemgenix-mechanism/history", ""):
        rita.open(page)
        width = rita.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"nothing overflows sideways at phone width: /console/{page}"
    ann = people("ann", viewport=PHONE, label="-phone")
    ann.open("documents/mechanism/hemgenix-mechanism/edit")
    ann.page.locator("#f-steps").scroll_into_view_if_needed()
    ann.shot("02-edit")
    assert ann.page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_review_works_by_keyboard_alone(browser, site):
    base, keys = site
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        # The article: nothing published refers to it, so it may be unpublished (a product the
        # others relate to may not: tests/test_published_references.py).
        page.goto(f"{base}/console/documents/article/how-does-hemgenix-work")
        expect(page.locator("#key")).to_be_focused()  # the key field takes focus when the page opens
        page.keyboard.type(keys["ada"])
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_have_text(ARTICLE_HEADLINE)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent").strip() == "Skip to content"
        # Every control can be reached with Tab and says what it is.
        unlabeled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map(el => el.name)""")
        assert unlabeled == []
        for _ in range(80):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent").strip() == "Unpublish":
                break
        else:
            pytest.fail("Tab never reached the Unpublish button")
        page.keyboard.press("Enter")
        expect(page.locator("section.actions .badge").first).to_have_text("unpublished")
    finally:
        context.close()


def test_the_shipped_article_shows_why_it_cannot_be_resubmitted(people):
    rita = people("rita")
    rita.open("documents/article/how-does-hemgenix-work")
    findings = rita.page.locator(".finding-list")
    expect(findings).to_contain_text("medical_reviewer")
    expect(findings).to_contain_text("last_reviewed")
    rita.page.locator(".finding-list a", has_text="medical_reviewer").click()
    assert rita.page.url.endswith("#f-medical_reviewer")
    expect(rita.page.locator("[id='f-medical_reviewer']")).to_contain_text("No medical reviewer is named")
    rita.shot("11-article-lint")
