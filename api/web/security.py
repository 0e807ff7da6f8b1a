"""Response hardening: security headers on every response, a CSP that fits the docs page, CORS on
public delivery only, and problem+json (or no body) where Werkzeug would answer in HTML."""
import functools
import json
import os
import re
from urllib.parse import urlsplit

from flask import Response, current_app, request
from werkzeug.routing import RequestRedirect

from api.web.caching import add_vary, tagged
from api.web.errors import PROBLEM, problem

# Data (JSON, YAML, text): nothing in it may load, run or be framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI from /docs/assets/, its start-up script from /docs/init.js (no inline script), the
# spec fetched from this origin. Its React components set element styles through the DOM, which
# CSP's style-src does not govern; the bundled SVG icons are data: URLs.
DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# Other HTML pages (the editorial console): this origin's scripts, styles and forms only, and no
# inline script, so injected markup cannot run.
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": API_CSP,
}
SECURITY_ITEMS = list(SECURITY_HEADERS.items())
DOCS_SECURITY_ITEMS = list({**SECURITY_HEADERS, "Content-Security-Policy": DOCS_CSP}.items())
PAGE_SECURITY_ITEMS = list({**SECURITY_HEADERS, "Content-Security-Policy": PAGE_CSP}.items())

# Public delivery: /v1/... except the editorial API and previews of drafts.
PUBLIC_ROUTES = r"^/v1/(?!editorial(/|$)|preview(/|$)).*"
EXPOSED_HEADERS = ["ETag", "X-Pagination", "Link", "Content-Language", "Retry-After"]

DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>{title}</title>
    <link href="{assets}swagger-ui.css" rel="stylesheet" type="text/css">
  </head>
  <body>
    <div id="swagger-ui-container"></div>
    <script src="{assets}swagger-ui-standalone-preset.js"></script>
    <script src="{assets}swagger-ui-bundle.js"></script>
    <script src="/docs/init.js"></script>
  </body>
</html>
"""


def cors_origins(value):
    """MEDKB_CORS_ORIGINS: "*" (the default) or origins separated by commas or spaces."""
    origins = [origin for origin in re.split(r"[,\s]+", value or "") if origin]
    return "*" if not origins or origins == ["*"] else origins


def init_app(app):
    from flask_cors import CORS

    app.config.setdefault("MEDKB_CORS_ORIGINS", os.environ.get("MEDKB_CORS_ORIGINS", "*"))
    app.config.setdefault("MEDKB_CORS_EDITORIAL_ORIGINS", os.environ.get("MEDKB_CORS_EDITORIAL_ORIGINS", ""))
    # "*" itself rather than the caller's origin: one cached answer serves every site.
    resources = {PUBLIC_ROUTES: {"origins": cors_origins(app.config["MEDKB_CORS_ORIGINS"]), "send_wildcard": True,
                                 "methods": ["GET", "HEAD", "OPTIONS"]}}
    # Editorial and preview answer CORS only for origins an operator lists for them.
    if app.config["MEDKB_CORS_EDITORIAL_ORIGINS"]:
        resources[r"^/v1/(editorial|preview)(/.*)?$"] = {"origins": cors_origins(app.config["MEDKB_CORS_EDITORIAL_ORIGINS"])}
    CORS(app, resources=resources, expose_headers=EXPOSED_HEADERS, max_age=600,
         allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "Accept-Language"])

    app.view_functions["api-docs.openapi_swagger_ui"] = docs_page
    app.view_functions["api-docs.openapi_json"] = functools.partial(tagged, app.view_functions["api-docs.openapi_json"])
    app.add_url_rule("/docs/init.js", "docs_init", docs_init)
    wildcard_cors = ([("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", ", ".join(EXPOSED_HEADERS))]
                     if resources[PUBLIC_ROUTES]["origins"] == "*" else [])
    app.after_request(functools.partial(harden, wildcard_cors=wildcard_cors))


def docs_page():
    """Swagger UI, with its start-up code in a file so that the CSP can forbid inline scripts."""
    page = DOCS_PAGE.format(title=current_app.config["API_TITLE"], assets=current_app.config["OPENAPI_SWAGGER_UI_URL"])
    return Response(page, mimetype="text/html")


def docs_init():
    config = {"url": "/" + current_app.config["OPENAPI_JSON_PATH"], "dom_id": "#swagger-ui-container",
              **current_app.config.get("OPENAPI_SWAGGER_UI_CONFIG", {})}
    script = f"window.addEventListener('load', function () {{ window.ui = SwaggerUIBundle({json.dumps(config)}); }});\n"
    return Response(script, mimetype="text/javascript", headers={"Cache-Control": "public, max-age=300"})


def harden(response, wildcard_cors=()):
    """after_request: security headers, CORS for the common case, relative redirects, no HTML bodies."""
    path, headers, status = request.path, response.headers, response.status_code
    if path.startswith("/docs"):
        items = DOCS_SECURITY_ITEMS
    elif headers.get("Content-Type", "").startswith("text/html"):
        items = PAGE_SECURITY_ITEMS
    else:
        items = SECURITY_ITEMS
    for name, value in items:  # a blueprint's own policy (the console's CSP) stands; two would both apply
        headers.setdefault(name, value)
    if request.method in ("GET", "HEAD") and path.startswith("/v1/") and not path.startswith(
            ("/v1/editorial", "/v1/preview")):
        if not wildcard_cors:
            # Listed origins: the answer depends on the Origin sent, also when it names none of
            # them (flask-cors then says nothing), or a shared cache would hand that answer,
            # without Access-Control-Allow-Origin, to a listed site.
            add_vary(response, "Origin")
        elif "Access-Control-Allow-Origin" not in headers:
            # The same two headers for every public read; flask-cors, seeing them, leaves the
            # response alone (it still answers preflight requests and lists of origins). An error
            # or a 304 may carry them already (flask-cors answers exceptions itself): twice, a
            # browser reads "*, *" and refuses the response.
            headers.extend(wildcard_cors)
    if headers.get("Content-Type") == PROBLEM:
        # An error is about this moment: a cache keeping a 404 would hide a document published a
        # second later (RFC 9111 lets caches store a 404 without being told).
        headers.setdefault("Cache-Control", "no-store")
    if 300 <= status < 400 and status != 304:
        return relative_redirect(response)
    if status == 200 and request.method == "OPTIONS" and not response.content_length:
        # Flask's automatic OPTIONS answer is an empty text/html 200; say plainly there is no body.
        response.status_code = 204
        headers.pop("Content-Type", None)
        headers.pop("Content-Length", None)
    return response


def relative_redirect(response):
    if response.location:
        # Werkzeug builds a redirect's target from the request's Host; a client must not be able
        # to choose where it is sent, so the target stays on this server whatever Host said.
        target = urlsplit(response.location)
        if target.netloc:
            response.location = target.path + (f"?{target.query}" if target.query else "")
    if isinstance(request.routing_exception, RequestRedirect) and response.mimetype == "text/html":
        moved = problem(response.status_code, detail=f"This resource lives at {response.location}.")
        moved.headers.update({name: value for name, value in response.headers.items()
                              if name not in ("Content-Type", "Content-Length")})
        return moved
    if response.mimetype == "text/html":  # Werkzeug's "Redirecting..." page (the console's redirects)
        response.set_data(b"")
        del response.headers["Content-Type"]
    return response
