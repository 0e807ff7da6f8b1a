"""The ASGI entry point `medkb serve` gives granian: the Flask app behind the buffering front."""
import os

from api.app import create_app
from api.web.server import BODY_READ_TIMEOUT, BufferedWSGI


def create_asgi_app():
    """granian's factory, called once in every worker process (configuration from the environment)."""
    app = create_app()
    return BufferedWSGI(app, max_body=app.config["MAX_CONTENT_LENGTH"],
                        body_timeout=float(os.environ.get("MEDKB_BODY_TIMEOUT") or BODY_READ_TIMEOUT))
