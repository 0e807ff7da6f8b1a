"""Bearer API keys for the editorial and preview blueprints."""
import hmac

from flask import current_app, g, request
from flask_smorest import abort


def require_key():
    """before_request: 401 unless the request carries a live API key; the key is in g.key."""
    if request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    key = None
    if hmac.compare_digest(scheme.lower().encode(), b"bearer") and secret.strip():
        key = current_app.extensions["medkb"].keys.authenticate(secret.strip())
    if key is None:
        abort(401, message="A valid API key is required: Authorization: Bearer <key>.",
              headers={"WWW-Authenticate": 'Bearer realm="medkb"'})
    g.key = key

