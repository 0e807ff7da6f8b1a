"""The editorial console through Flask's test client: sessions, CSRF, headers, forms and pages.
The same story in a real browser against a real server is in test_console_browser.py."""
import html.parser
import re

import pytest

from api.services.documents import Documents
from api.store.keys import KeyStore
from api.store.store import Store
from api.web.console.forms import apply_op, document_from_form, specs_for
from api.web.console.text import field_diff, markdown, word_diff

FAQ = "/console/documents/faq/hemgenix-how-does-it-work"


class Forms(html.parser.HTMLParser):
    """Every form on a page as a browser would submit it: [(action, {name: value}, [buttons])]."""

    def __init__(self, text):
        super().__init__()
        self.forms, self._field, self._select = [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append((attrs.get("action"), {}, []))
        elif not self.forms:
            return
        elif tag == "input" and attrs.get("name") and attrs.get("type") not in ("checkbox", "radio"):
            self.forms[-1][1][attrs["name"]] = attrs.get("value") or ""
        elif tag == "textarea":
            self._field = attrs["name"]
            self.forms[-1][1][self._field] = ""
        elif tag == "select":
            self._select = attrs["name"]
            self.forms[-1][1][self._select] = None
        elif tag == "option" and self._select and ("selected" in attrs or
                                                   self.forms[-1][1][self._select] is None):
            self.forms[-1][1][self._select] = attrs.get("value", "")
        elif tag == "button" and attrs.get("name"):
            self.forms[-1][2].append((attrs["name"], attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._field = None
        elif tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._field:
            self.forms[-1][1][self._field] += data

    def form(self, action_part, **having):
        return next((action, dict(fields), buttons) for action, fields, buttons in self.forms
                    if action and action_part in action and all(fields.get(k) == v for k, v in having.items()))


@pytest.fixture
def keys(content_db):
    store = KeyStore(content_db)
    return {name: store.create(role, name)[1] for name, role in
            [("ann", "author"), ("abe", "author"), ("rita", "reviewer"), ("paul", "publisher"), ("ada", "admin")]}


def signed_in(app, secret):
    client = app.test_client()
    page = client.get("/console/sign-in")
    token = Forms(page.text).form("sign-in")[1]["csrf"]
    response = client.post("/console/sign-in", data={"key": secret, "csrf": token, "next": "/console/"})
    assert response.status_code == 302 and response.headers["Location"] == "/console/"
    return client


@pytest.fixture
def ann(app, keys):
    return signed_in(app, keys["ann"])


@pytest.fixture
def rita(app, keys):
    return signed_in(app, keys["rita"])


def csrf(client, path=FAQ):
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


# --- signing in -------------------------------------------------------------------


def test_pages_need_a_session_and_send_you_back_after_sign_in(app, keys):
    client = app.test_client()
    response = client.get(FAQ)
    assert response.status_code == 302 and response.headers["Location"] == f"/console/sign-in?next={FAQ}"
    assert response.data == b"" and "Content-Type" not in response.headers  # a redirect has no page
    token = Forms(client.get(response.headers["Location"]).text).form("sign-in")[1]
    response = client.post("/console/sign-in", data={**token, "key": keys["rita"]})
    assert response.headers["Location"] == FAQ


def test_the_session_cookie_is_http_only_strict_and_expires(app, keys):
    client = app.test_client()
    token = Forms(client.get("/console/sign-in").text).form("sign-in")[1]["csrf"]
    response = client.post("/console/sign-in", data={"key": keys["ann"], "csrf": token})
    cookie = next(value for value in response.headers.getlist("Set-Cookie") if value.startswith("medkb_console="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=28800" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie
    secure = app.test_client()
    token = Forms(secure.get("/console/sign-in", base_url="https://localhost").text).form("sign-in")[1]["csrf"]
    response = secure.post("/console/sign-in", data={"key": keys["ann"], "csrf": token}, base_url="https://localhost")
    assert "Secure" in next(v for v in response.headers.getlist("Set-Cookie") if v.startswith("medkb_console="))


def test_only_the_hash_of_the_session_id_is_stored(app, keys, content_db):
    client = signed_in(app, keys["ann"])
    session_id = client.get_cookie("medkb_console", path="/console").value
    assert len(session_id) == 43  # 256 random bits, URL-safe base64
    files = list((content_db / "console-sessions").glob("*.json"))
    assert len(files) == 1
    assert session_id not in files[0].name and session_id not in files[0].read_text()


@pytest.mark.parametrize("secret", ["", "mkb_not-a-key", "x" * 500, "' OR 1=1 --"])
def test_a_bad_key_is_refused_with_a_clear_message(app, secret):
    client = app.test_client()
    token = Forms(client.get("/console/sign-in").text).form("sign-in")[1]["csrf"]
    response = client.post("/console/sign-in", data={"key": secret, "csrf": token})
    assert response.status_code == 401
    assert "not valid" in response.text or "Enter your API key" in response.text
    assert not any(value.startswith("medkb_console=") for value in response.headers.getlist("Set-Cookie"))


def test_sign_out_ends_the_session_everywhere(app, keys, content_db):
    client = signed_in(app, keys["ann"])
    session_id = client.get_cookie("medkb_console", path="/console").value
    response = client.post("/console/sign-out", data={"csrf": csrf(client)})
    assert response.status_code == 302
    assert list((content_db / "console-sessions").glob("*.json")) == []
    other = app.test_client()
    other.set_cookie("medkb_console", session_id, path="/console")
    assert other.get("/console/").status_code == 302


def test_revoking_the_key_ends_its_sessions(app, keys, content_db):
    client = signed_in(app, keys["ann"])
    KeyStore(content_db).revoke("ann")
    assert client.get("/console/").headers["Location"].startswith("/console/sign-in")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/v1/products", "/console\\@evil"])
def test_sign_in_never_redirects_off_the_console(app, keys, target):
    client = app.test_client()
    token = Forms(client.get("/console/sign-in").text).form("sign-in")[1]["csrf"]
    response = client.post("/console/sign-in", data={"key": keys["ann"], "csrf": token, "next": target})
    assert response.headers["Location"] == "/console/"


# --- CSRF and headers ---------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "", "forged" * 7 + "x"])
def test_a_post_without_the_session_token_is_forbidden_and_changes_nothing(ann, content_db, token):
    form = Forms(ann.get(f"{FAQ}/edit").text).form("/edit")[1]
    form.update({"answer": "Changed without a token.", "op": "save"})
    if token is None:
        form.pop("csrf")
    else:
        form["csrf"] = token
    response = ann.post(f"{FAQ}/edit", data=form)
    assert response.status_code == 403 and "security token" in response.text
    assert Store(content_db).head("faq", "hemgenix-how-does-it-work").revision == 1


def test_a_post_without_a_session_is_sent_to_sign_in_and_changes_nothing(app, content_db):
    response = app.test_client().post(f"{FAQ}/actions", data={"action": "archive", "revision": "1"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/console/sign-in")
    assert Store(content_db).state("faq", "hemgenix-how-does-it-work").published == 1


def test_the_sign_in_form_needs_its_token_too(app, keys):
    response = app.test_client().post("/console/sign-in", data={"key": keys["ann"]})
    assert response.status_code == 403


@pytest.mark.parametrize("path", ["/console/", FAQ, f"{FAQ}/edit", f"{FAQ}/history", f"{FAQ}/compare",
                                  "/console/static/console.css", "/console/no-such-page", "/console/sign-in"])
def test_console_responses_have_a_strict_csp_no_store_and_no_cors(ann, path):
    response = ann.get(path, headers={"Origin": "https://elsewhere.example"})
    assert response.status_code in (200, 302, 404)
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'")
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        assert len(response.headers.getlist(name)) == 1, name  # two policies would both apply
    assert response.headers["Cache-Control"] == "no-store"
    assert not [name for name in response.headers.keys() if name.lower().startswith("access-control")]
    if response.mimetype == "text/html":
        assert "<script" not in response.text and "style=" not in response.text and "<style" not in response.text
    response.close()


def test_an_unknown_console_page_is_an_html_404(ann):
    response = ann.get("/console/documents/nothing/here")
    assert response.status_code == 404 and response.mimetype == "text/html"
    assert "does not exist" in response.text or "no document type" in response.text


# --- pages -------------------------------------------------------------------------


def test_queues_show_what_each_role_works_on(ann, rita, content_db):
    body = rita.get("/console/").text
    assert body.index("Waiting for my review") < body.index("My drafts")  # a reviewer's own queue first
    found = rita.get("/console/?type=faq&q=padua").text.split('id="all-h"', 1)[1]
    assert "What is the Padua variant" in found and "Does Hemgenix change my DNA" not in found
    assert "1 document" in found
    response = rita.get("/console/?type=nonsense&status=bogus&page=x")
    assert response.status_code == 200 and "There is no document type" in response.text


def test_the_shipped_articles_lint_errors_are_shown_at_their_fields(ann):
    path = "/console/documents/article/how-does-hemgenix-work"
    page = ann.get(path).text
    assert 'href="#f-medical_reviewer"' in page and "No medical reviewer is named" in page
    form = Forms(ann.get(f"{path}/edit").text).form("/edit")[1]
    preview = ann.post(f"{path}/edit", data={**form, "op": "preview"}).text
    control = preview.split('id="f-medical_reviewer"', 1)[1].split('class="control', 1)[0]
    assert "No medical reviewer is named" in control
    # Submitting a draft of it shows the service's refusal with the findings that block it.
    ann.post(f"{path}/edit", data={**form, "headline": "How Hemgenix works", "op": "save"})
    refused = ann.post(f"{path}/actions", data=Forms(ann.get(path).text).form("/actions", action="submit")[1])
    assert refused.status_code == 422 and "Lint errors block submit" in refused.text


def test_markdown_is_rendered_safely():
    rendered = markdown("**Bold** <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://a.example) "
                        "<b onclick=alert(1)>b</b> ![img](https://a.example/i.png) [m](mailto:a@b.example)")
    assert "<strong>Bold</strong>" in rendered
    assert "<script" not in rendered and "&lt;script&gt;" in rendered
    assert 'href="javascript' not in rendered and "<img" not in rendered and "<b " not in rendered
    assert 'href="https://a.example"' in rendered and 'href="mailto:a@b.example"' in rendered


def test_comparison_is_word_level_for_prose_and_field_level_for_structure():
    old = {"type": "faq", "answer": "Liver cells make Factor IX.", "position": 1, "revision": 1,
           "citations": [{"source": "a"}]}
    new = {"type": "faq", "answer": "Liver cells then make Factor IX.", "position": 2, "revision": 2,
           "citations": [{"source": "a"}, {"source": "b"}]}
    changes = {c["field"]: c for c in field_diff(old, new)}
    assert set(changes) == {"answer", "position", "citations.1.source"}
    assert ("added", " then") in changes["answer"]["words"]
    assert changes["position"]["words"] is None and changes["citations.1.source"]["change"] == "added"
    assert word_diff("a b", "a b") == [("same", "a b")]


def test_an_unchanged_form_gives_back_every_shipped_document_exactly(ann, content_db):
    store = Store(content_db)
    for type_name, id_ in store.keys():
        head = store.head(type_name, id_).content
        form = Forms(ann.get(f"/console/documents/{type_name}/{id_}/edit").text).form("/edit")[1]
        assert document_from_form(head, form) == head, f"{type_name}/{id_}"


def test_list_buttons_add_remove_and_reorder_without_saving(ann, content_db):
    path = "/console/documents/mechanism/hemgenix-mechanism/edit"
    form = Forms(ann.get(path).text).form("/edit")[1]
    titles = [form[f"steps.{i}.title"] for i in range(int(form["steps.__n"]))]
    response = ann.post(path, data={**form, "op": "up:steps.1"})
    moved = Forms(response.text).form("/edit")[1]
    assert [moved[f"steps.{i}.title"] for i in range(len(titles))] == [titles[1], titles[0], *titles[2:]]
    response = ann.post(path, data={**moved, "op": "add:steps.0.citations"})
    added = Forms(response.text).form("/edit")[1]
    assert added["steps.0.citations.__n"] == "2"
    response = ann.post(path, data={**added, "op": "remove:steps.0"})
    assert Forms(response.text).form("/edit")[1]["steps.__n"] == str(len(titles) - 1)
    assert Store(content_db).head("mechanism", "hemgenix-mechanism").revision == 1


def test_saving_reordered_steps_renumbers_their_positions(ann, content_db):
    path = "/console/documents/mechanism/hemgenix-mechanism/edit"
    form = Forms(ann.get(path).text).form("/edit")[1]
    moved = Forms(ann.post(path, data={**form, "op": "down:steps.0"}).text).form("/edit")[1]
    response = ann.post(path, data={**moved, "op": "save", "message": "Reorder"})
    assert response.status_code == 303
    steps = Store(content_db).head("mechanism", "hemgenix-mechanism").content["steps"]
    assert [s["position"] for s in steps] == list(range(1, len(steps) + 1))
    assert steps[1]["title"] == form["steps.0.title"]


@pytest.mark.parametrize("field, value, message", [
    ("answer", "<b>bold</b>", "Raw HTML is not allowed"),
    ("position", "first", "Not a valid integer"),
    ("question", "", "Missing data for required field"),
    ("citations.0.source", "no-such-source", "does not exist"),
])
def test_invalid_edits_are_shown_at_the_field_and_not_saved(ann, content_db, field, value, message):
    form = Forms(ann.get(f"{FAQ}/edit").text).form("/edit")[1]
    response = ann.post(f"{FAQ}/edit", data={**form, field: value, "op": "save"})
    assert response.status_code == 422
    control = response.text.split(f'id="f-{field}"', 1)[1].split('class="control', 1)[0]
    assert message in control
    assert Store(content_db).head("faq", "hemgenix-how-does-it-work").revision == 1


@pytest.mark.parametrize("form", [{"steps.__n": "lots"}, {"steps.__n": "100000"}, {"revision": "x"},
                                  {"revision": "-1"}, {"revision": "9" * 30}, {"op": "remove:steps.99"},
                                  {"op": "add:nothing"}, {"op": "up:steps"}, {"op": "add:steps.0.title"},
                                  {"steps.0.position": "x"}, {"tags": "x" * 10}, {"steps.__n": "²"}])
def test_malformed_forms_get_a_clear_answer_never_a_500(ann, form):
    path = "/console/documents/mechanism/hemgenix-mechanism/edit"
    fields = Forms(ann.get(path).text).form("/edit")[1]
    response = ann.post(path, data={**fields, **form})
    assert 200 <= response.status_code < 500 and response.status_code != 303


@pytest.mark.parametrize("value, message", [("[" * 5000 + "]" * 5000, "Nested more than 64 levels"),
                                            ('"\\ud800"', "unpaired surrogate"), ("1e400", "Numbers must be finite"),
                                            ("[" * 65 + "]" * 65, "Nested more than 64 levels")])
def test_json_the_store_cannot_keep_is_refused_at_its_input(ann, content_db, value, message):
    path, field = "/console/documents/product/hemgenix/edit", "label_facts.doses.0.amount"
    form = Forms(ann.get(path).text).form("/edit")[1]
    assert field in form
    for op in ("preview", "save"):
        response = ann.post(path, data={**form, field: value, "op": op})
        assert response.status_code == 422 and message in response.text
    assert Store(content_db).head("product", "hemgenix").revision == 1


def test_approve_is_shown_disabled_with_the_reason_to_whoever_may_not_approve(app, keys, ann):
    form = Forms(ann.get(f"{FAQ}/edit").text).form("/edit")[1]
    ann.post(f"{FAQ}/edit", data={**form, "question": "How does Hemgenix work, briefly?", "op": "save"})
    ann.post(f"{FAQ}/actions", data=Forms(ann.get(FAQ).text).form("/actions", action="submit")[1])
    assert "You wrote this revision" in ann.get(FAQ).text
    abe = signed_in(app, keys["abe"]).get(FAQ).text
    assert "A reviewer approves this revision; you are signed in as author." in abe
    assert re.search(r"<button type=\"submit\" disabled[^>]*>Approve</button>", abe)
    rita = signed_in(app, keys["rita"]).get(FAQ).text
    assert re.search(r"<button type=\"submit\" class=\"primary\">Approve</button>", rita)


def test_a_body_over_the_size_limit_gets_an_html_413(ann):
    response = ann.post(f"{FAQ}/edit", data={"answer": "x" * (1024 * 1024 + 1)})
    assert response.status_code == 413 and response.mimetype == "text/html"


def test_a_reviewer_is_offered_no_edit_and_the_service_refuses_one(rita, content_db):
    page = rita.get(FAQ).text
    assert f'href="{FAQ}/edit"' not in page
    form = Forms(rita.get(f"{FAQ}/edit").text).form("/edit")[1]
    response = rita.post(f"{FAQ}/edit", data={**form, "answer": "A reviewer's edit.", "op": "save"})
    assert response.status_code == 403 and "may not edit documents" in response.text
    assert Store(content_db).head("faq", "hemgenix-how-does-it-work").revision == 1


@pytest.mark.parametrize("action, extra, message", [
    ("request_changes", {}, "a comment is required"),
    ("request_changes", {"comment": "  "}, "a comment is required"),
    ("publish", {}, "Cannot publish a document that is in_review"),
    ("fly", {}, "There is no action"),
    ("restore", {"restore_revision": "one"}, "not readable"),
    ("publish", {"publish_at": "9999-12-31T23:59:00-01:00"}, "Out of range once converted to UTC"),
    ("approve", {"etag": "rev-0-nothing"}, "Someone else changed this document"),
])
def test_refused_actions_say_why_and_change_nothing(app, keys, content_db, action, extra, message):
    client = signed_in(app, keys["ada"])
    form = Forms(client.get(f"{FAQ}/edit").text).form("/edit")[1]
    client.post(f"{FAQ}/edit", data={**form, "question": "How does Hemgenix work, briefly?", "op": "save"})
    client.post(f"{FAQ}/actions", data=Forms(client.get(FAQ).text).form("/actions", action="submit")[1])
    form = Forms(client.get(FAQ).text).form("/actions", action="approve")[1]
    assert form["state"] == "in_review"
    response = client.post(f"{FAQ}/actions", data={**form, "action": action, **extra})
    assert 400 <= response.status_code < 500 and message in response.text
    assert editorial_state(content_db) == "in_review"


def editorial_state(db):
    from api.services.workflow import state_of

    return state_of(Store(db).state("faq", "hemgenix-how-does-it-work"))


def test_restore_makes_an_old_revision_the_new_draft(ann, content_db):
    form = Forms(ann.get(f"{FAQ}/edit").text).form("/edit")[1]
    ann.post(f"{FAQ}/edit", data={**form, "question": "Changed?", "op": "save"})
    history = Forms(ann.get(f"{FAQ}/history").text).form("/actions")
    assert history[1]["restore_revision"] == "1"
    response = ann.post(f"{FAQ}/actions", data=history[1])
    assert response.status_code == 303 and "saved=3" in response.headers["Location"]
    assert Store(content_db).head("faq", "hemgenix-how-does-it-work").content["question"] == "How does Hemgenix work?"


def test_form_paths_cover_every_field_of_every_type():
    from schemas.documents import DOCUMENT_SCHEMAS

    for type_name in DOCUMENT_SCHEMAS:
        assert {spec.name for spec in specs_for(type_name)}, type_name
    document = {"type": "mechanism", "steps": [{"title": "a", "position": 1}, {"title": "b", "position": 2}]}
    assert apply_op(document, "down:steps.0") and [s["title"] for s in document["steps"]] == ["b", "a"]
    assert [s["position"] for s in document["steps"]] == [1, 2]
    assert not apply_op(document, "down:steps.1") and not apply_op(document, "drop:steps")


def test_an_expired_session_is_refused_and_removed(tmp_path):
    import datetime
    import os

    from api.store.keys import ApiKey
    from api.store.sessions import SessionStore

    key = ApiKey(id="k_00000001", name="ann", role="author", created_at="", revoked_at=None)
    expired = SessionStore(tmp_path, lifetime=datetime.timedelta(0))
    session_id, _ = expired.create(key)
    assert expired.get(session_id) is None and list(tmp_path.glob("*.json")) == []
    live = SessionStore(tmp_path)
    kept, _ = live.create(key)
    abandoned, _ = live.create(key)
    old = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)).timestamp()
    os.utime(live._path(abandoned), (old, old))
    live.prune()
    assert live.get(kept).name == "ann" and not live._path(abandoned).exists()
    for bad in (None, "", "../../etc/passwd", "a" * 43 + "/", kept + "x"):
        assert live.get(bad) is None


def test_publishing_at_a_time_schedules_it(app, keys, content_db):
    import datetime

    ann, rita, paul = (signed_in(app, keys[name]) for name in ("ann", "rita", "paul"))
    form = Forms(ann.get(f"{FAQ}/edit").text).form("/edit")[1]
    ann.post(f"{FAQ}/edit", data={**form, "question": "How does Hemgenix work, in short?", "op": "save"})
    ann.post(f"{FAQ}/actions", data=Forms(ann.get(FAQ).text).form("/actions", action="submit")[1])
    rita.post(f"{FAQ}/actions", data=Forms(rita.get(FAQ).text).form("/actions", action="approve")[1])
    when = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    form = Forms(paul.get(FAQ).text).form("/actions", action="publish")[1]
    assert paul.post(f"{FAQ}/actions", data={**form, "publish_at": when}).status_code == 303
    queues = paul.get("/console/").text
    scheduled = queues.split('id="queue-scheduled"', 1)[1].split("</section>", 1)[0]
    assert "How does Hemgenix work, in short?" in scheduled and when in scheduled
    assert editorial_state(content_db) == "approved"


class Controls(html.parser.HTMLParser):
    """Element ids, label targets and the ids of visible form controls on a page."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.labels, self.controls = [], set(), []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.append(attrs["id"])
        if tag == "label" and attrs.get("for"):
            self.labels.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden" and not attrs.get("aria-label"):
            self.controls.append(attrs.get("id") or attrs.get("name"))


def test_every_page_has_unique_ids_and_a_label_on_every_control(ann, content_db):
    pages = []
    for type_name, id_ in Store(content_db).keys():
        base = f"/console/documents/{type_name}/{id_}"
        form = Forms(ann.get(f"{base}/edit").text).form("/edit")[1]
        pages += [ann.get(base).text, ann.get(f"{base}/edit").text, ann.get(f"{base}/history").text,
                  ann.post(f"{base}/edit", data={**form, "op": "preview"}).text]
    pages += [ann.get("/console/").text, ann.get("/console/sign-in?next=/console/").text]
    for page in pages:
        found = Controls(page)
        duplicated = {name for name in found.ids if found.ids.count(name) > 1}
        assert not duplicated
        assert [control for control in found.controls if control not in found.labels] == []


def test_queues_follow_commits_made_by_other_processes(rita, content_db):
    before = rita.get("/console/?q=from+elsewhere").text
    assert "0 documents" in before
    store = Store(content_db)  # another writer, as a CLI import or another worker would be
    head = store.head("faq", "hemgenix-what-is-the-padua-variant")
    Documents(store).write({**head.content, "question": "Written from elsewhere?"}, expected_revision=head.revision,
                actor="import", publish=True)
    after = rita.get("/console/?q=from+elsewhere").text
    assert "Written from elsewhere?" in after and "1 document" in after


def test_an_articles_faqs_are_reordered_and_removed_in_the_form(ann, content_db):
    path = "/console/documents/article/how-does-hemgenix-work/edit"
    form = Forms(ann.get(path).text).form("/edit")[1]
    faqs = [form[f"faqs.{i}"] for i in range(int(form["faqs.__n"]))]
    moved = Forms(ann.post(path, data={**form, "op": "down:faqs.0"}).text).form("/edit")[1]
    trimmed = Forms(ann.post(path, data={**moved, "op": "remove:faqs.3"}).text).form("/edit")[1]
    assert ann.post(path, data={**trimmed, "op": "save"}).status_code == 303
    assert Store(content_db).head("article", "how-does-hemgenix-work").content["faqs"] == [faqs[1], faqs[0], faqs[2]]


def test_no_form_post_whatever_its_fields_gets_a_500(app, keys):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    client = signed_in(app, keys["ada"])
    path = "/console/documents/mechanism/hemgenix-mechanism"
    base = Forms(client.get(f"{path}/edit").text).form("/edit")[1]
    names = st.sampled_from(sorted(base) + ["op", "action", "state", "etag", "publish_at", "restore_revision",
                                            "steps.9.title", "sections.__n", "comment"])
    values = st.one_of(st.text(max_size=40), st.sampled_from(["0", "-1", "999", "up:steps.0", "add:steps",
                                                              "remove:sections.0", "save", "preview", "publish"]))

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.dictionaries(names, values, max_size=6), st.sampled_from(["/edit", "/actions"]))
    def post(changes, target):
        response = client.post(f"{path}{target}", data={**base, **changes})
        assert response.status_code < 500, response.text[-500:]

    post()
