"""The editorial console: HTML pages over the same services the editorial API calls.

Signing in exchanges an API key for a server-side session (api/store/sessions.py); the browser
holds only a random id in an HttpOnly, SameSite=Strict cookie. Every form carries the session's
CSRF token. The console never decides a workflow rule itself: it calls Editorial and shows
what Editorial answers, so a page and the API cannot disagree.
"""
import hmac
import secrets

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from werkzeug.exceptions import Forbidden, HTTPException, NotFound

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")

SESSION_COOKIE = "medkb_console"
SIGN_IN_COOKIE = "medkb_console_sign_in"  # the CSRF token of the sign-in form, before any session exists
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
PUBLIC_ENDPOINTS = ("console.sign_in", "console.static")


def sessions():
    return current_app.extensions["medkb.console_sessions"]


def _active_key(key_id):
    # Revoking the API key ends every session it opened.
    return next((key for key in current_app.extensions["medkb"].keys.list()
                 if key.id == key_id and key.revoked_at is None), None)


@bp.before_request
def _authenticate():
    g.key = g.console_session = None
    session_id = request.cookies.get(SESSION_COOKIE)
    session = sessions().get(session_id) if session_id else None
    if session is not None:
        g.key = _active_key(session.key_id)
        if g.key is None:
            sessions().delete(session_id)
            session = None
    g.console_session = session
    if session is None and request.endpoint not in PUBLIC_ENDPOINTS:
        # Nothing is done for a post without a session either: it is sent to sign in.
        target = request.full_path if request.method == "GET" else url_for(".queues")
        return redirect(url_for(".sign_in", next=target.rstrip("?")))
    if request.method == "POST":
        expected = request.cookies.get(SIGN_IN_COOKIE) if request.endpoint == "console.sign_in" else session.csrf
        sent = request.form.get("csrf", "")
        if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
            raise Forbidden("This form did not carry a valid security token (it may be from an old page, "
                            "or from another site). Reload the page and try again.")
    return None


@bp.after_app_request
def _console_headers(response):
    # after_app_request, not after_request: unmatched /console URLs must get these headers too.
    if request.path == "/console" or request.path.startswith("/console/"):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-store"
        for name in [name for name in response.headers.keys() if name.lower().startswith("access-control-")]:
            del response.headers[name]
    return response


@bp.app_context_processor
def _csrf_token():
    session = g.get("console_session")
    return {"csrf_token": session.csrf if session else g.get("sign_in_token", "")}


@bp.errorhandler(HTTPException)
def _error_page(error):
    return render_template("console/error.html", error=error), error.code


def safe_next(target):
    """Only a console path: never an absolute URL (an open redirect) or a protocol-relative one."""
    if isinstance(target, str) and target.startswith("/console") and not target.startswith("//") \
            and "\\" not in target and "\n" not in target and "\r" not in target:
        return target
    return url_for(".queues")


def _set_cookie(response, name, value, max_age):
    response.set_cookie(name, value, max_age=max_age, path="/console", httponly=True, samesite="Strict",
                        secure=request.is_secure)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if g.console_session is not None and request.method == "GET":
        return redirect(safe_next(request.args.get("next")))
    error, status = None, 200
    if request.method == "POST":
        secret = request.form.get("key", "").strip()
        key = current_app.extensions["medkb"].keys.authenticate(secret) if secret else None
        if key is not None:
            session_id, _ = sessions().create(key)
            response = redirect(safe_next(request.form.get("next")))
            _set_cookie(response, SESSION_COOKIE, session_id, int(sessions().lifetime.total_seconds()))
            response.delete_cookie(SIGN_IN_COOKIE, path="/console")
            return response
        error, status = ("Enter your API key." if not secret else
                         "That key is not valid, or it was revoked. Ask an admin for a new one."), 401
    g.sign_in_token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = current_app.make_response((render_template(
        "console/sign_in.html", error=error, next=safe_next(request.values.get("next"))), status))
    _set_cookie(response, SIGN_IN_COOKIE, g.sign_in_token, 3600)
    return response


@bp.route("/sign-out", methods=["POST"])
def sign_out():
    sessions().delete(request.cookies.get(SESSION_COOKIE))
    response = redirect(url_for(".sign_in"))
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@bp.route("/<path:anything>")
def _unknown(anything):
    raise NotFound("There is no console page at this address.")


from . import pages  # noqa: E402,F401  (registers the page routes on bp)
