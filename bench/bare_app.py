"""The baseline for bench/delivery.py: a bare Flask app returning the same bytes from a dict,
served the way `medkb serve` serves medkb (granian, the same buffering ASGI front)."""
import os
import sys
from pathlib import Path

from flask import Flask, Response, abort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BODIES = {"hemgenix": Path(os.environ["BARE_BODY"]).read_bytes()}

app = Flask(__name__)


@app.get("/v1/products/<id_>")
def product(id_):
    body = BODIES.get(id_)
    if body is None:
        abort(404)
    return Response(body, mimetype="application/json")


def create_asgi_app():
    from api.web.server import BufferedWSGI

    return BufferedWSGI(app, max_body=1024 * 1024)
