"""What a view needs from the app: its services, and which of them a request is for."""
from flask import current_app, request


def services():
    """The services of the app handling the current request (built by api.app.create_app)."""
    return current_app.extensions["medkb"]


def delivery():
    """Delivery over published content, or over drafts when the request came in under /v1/preview."""
    found = services()
    return found.preview if request.blueprint.startswith("preview-") else found.delivery


def preferences(args):
    """Locales the caller asked for, best first: `locale=` wins over Accept-Language."""
    if args.get("locale"):
        return [args["locale"]]
    if not request.environ.get("HTTP_ACCEPT_LANGUAGE"):
        return []
    return [value for value, quality in request.accept_languages if quality > 0 and value != "*"]
