"""The app factory: configuration, the services every request uses, and the web layer on top."""
import os
from dataclasses import dataclass
from pathlib import Path

import swagger_ui_bundle
from flask import Flask, request, send_from_directory

from api.knowledge.documents import references
from api.services.delivery import Delivery
from api.services.search import PREVIEW, StoreSearch, prepare as prepare_search
from api.services.workflow import Editorial
from api.store.draftmodel import DraftModel
from api.store.readmodel import ReadModel
from api.store import open_store
from api.store.base import StoreBackend
from api.web import (DELIVERY_BLUEPRINTS, EDITORIAL_BLUEPRINTS, OPERATIONS_BLUEPRINTS, PREVIEWED, metrics, ratelimits,
                     security)
from api.web.bodies import BodyErrors
from api.web.auth import require_key
from api.web.caching import finish_response
from api.web.console import bp as console  # HTML pages, not part of the OpenAPI contract
from api.web.context import services
from api.web.converters import register_converters
from api.web.errors import register_error_handlers
from api.web.openapi import ContractDocs
from api.web.paging import add_page_links
from api.web.responsecache import DEFAULT_BYTES as DEFAULT_CACHE_BYTES, PublicResponseCache
from api.web.safejson import ScriptSafeJSONProvider
from api.web.smorest import Api

DEFAULT_STORE = "var/medkb"
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"


@dataclass
class Services:
    store: StoreBackend
    model: ReadModel
    delivery: Delivery
    editorial: Editorial
    keys: object  # KeyStore, or PostgresKeyStore: authenticate, list, create, revoke
    preview: Delivery  # the same service over head revisions, drafts included


def create_app(test_config=None):
    """Build the app on the store at MEDKB_DB (or `test_config["MEDKB_DB"]`)."""
    app = Flask(__name__)
    app.json = ScriptSafeJSONProvider(app)
    app.config.from_mapping(
        MEDKB_DB=os.environ.get("MEDKB_DB", DEFAULT_STORE),
        # PostgreSQL holds the store when set; MEDKB_DB is then this node's own folder.
        MEDKB_DATABASE_URL=os.environ.get("MEDKB_DATABASE_URL") or None,
        # Absolute URLs in bodies (JSON-LD @id/url) start with this, never with the request's Host.
        PUBLIC_BASE_URL=os.environ.get("MEDKB_PUBLIC_BASE_URL") or DEFAULT_PUBLIC_BASE_URL,
        MAX_CONTENT_LENGTH=1024 * 1024,
        # Per worker, for whole public responses (api/web/responsecache.py); 0 turns the cache off.
        MEDKB_RESPONSE_CACHE_BYTES=int(os.environ.get("MEDKB_RESPONSE_CACHE_BYTES") or DEFAULT_CACHE_BYTES),
        # How stale a worker's read model may be (seconds): each checks the store this often.
        MEDKB_CHECK_INTERVAL=0.1,
        API_TITLE="medkb",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Served from the swagger-ui-bundle package, so the docs work with no network at all;
        # validatorUrl null stops Swagger UI calling its online validator.
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "info": {"description": "Medication explainer content: published reads for the CMS feed and the "
                                    "mobile app, and the editorial workflow behind them. Errors are RFC 9457 "
                                    "problem+json."},
            "servers": [{"url": "/", "description": "this server"}],
        },
    )
    if test_config:
        app.config.update(test_config)

    store = open_store(Path(app.config["MEDKB_DB"]), app.config["MEDKB_DATABASE_URL"])
    # The read model and the search index are files `medkb serve` prepared before starting the
    # workers: opening them scans nothing, and no request ever builds the search index.
    model = ReadModel(store, references, check_interval=app.config["MEDKB_CHECK_INTERVAL"])
    prepare_search(store)
    drafts = DraftModel(store, references)
    app.extensions["medkb"] = Services(store, model, Delivery(model, search=StoreSearch(store, model)),
                                       Editorial(store, published=model), store.api_keys(),
                                       Delivery(drafts, search=StoreSearch(store, drafts, PREVIEW)))

    api = Api(app, spec_kwargs={"extra_plugins": [ContractDocs(), BodyErrors()]})
    app.extensions["medkb.api"] = api
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer",
                                                        "description": "An API key from `medkb keys create`."})
    register_converters(app, api)
    register_error_handlers(app)
    for blueprint in DELIVERY_BLUEPRINTS + EDITORIAL_BLUEPRINTS + OPERATIONS_BLUEPRINTS:
        api.register_blueprint(blueprint)
    # Preview is delivery again, over drafts: same code, same shapes, behind an API key.
    for blueprint in PREVIEWED:
        api.register_blueprint(blueprint, name=f"preview-{blueprint.name}",
                               url_prefix=blueprint.url_prefix.replace("/v1/", "/v1/preview/", 1))

    @app.before_request
    def catch_up():
        if request.blueprint and request.blueprint.startswith("preview-"):
            require_key()
            services().preview.refresh()
        elif request.path.startswith("/v1/"):
            services().delivery.refresh()

    app.after_request(add_page_links)
    app.after_request(finish_response)
    security.init_app(app)
    limits = ratelimits.init_app(app)
    metrics.init_app(app)
    app.wsgi_app = PublicResponseCache(app.wsgi_app, app.extensions["medkb"], limits,
                                       app.config["MEDKB_RESPONSE_CACHE_BYTES"])

    # The console's sessions go with the store; the app factory opens them as it opens the store
    # itself.
    app.extensions["medkb.console_sessions"] = store.console_sessions()

    app.register_blueprint(console)

    @app.route("/docs/assets/<path:filename>")
    def docs_assets(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    return app
