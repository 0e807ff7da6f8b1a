"""The baseline for bench/delivery.py: a bare Flask app returning the same bytes from a dict."""
import os
from pathlib import Path

from flask import Flask, Response, abort

BODIES = {"hemgenix": Path(os.environ["BARE_BODY"]).read_bytes()}

app = Flask(__name__)


@app.get("/v1/products/<id_>")
def product(id_):
    body = BODIES.get(id_)
    if body is None:
        abort(404)
    return Response(body, mimetype="application/json")
