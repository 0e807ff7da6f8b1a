"""medkb's Flask application."""
import os
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, request, send_from_directory

from api.services.delivery import Delivery
from api.store.draftmodel import DraftModel
from api.web.smorest import Api, KeyRequired, finish_response
from api.store.keys import KeyStore
from api.web.auth import require_key
from api.store.readmodel import ReadModel
from api.store.store import Store
from api.services.workflow import Editorial

DEFAULT_STORE = "var/medkb"


@dataclass
class Services:
    store: Store
    model: ReadModel
    delivery: Delivery
    editorial: Editorial
    keys: KeyStore
    preview: Delivery  # the same service over head revisions, drafts included


def create_app(test_config=None):
    """Build the app on the store at MEDKB_DB (or `test_config["MEDKB_DB"]`)."""
    app = Flask(__name__)
    app.config.from_mapping(
        MEDKB_DB=os.environ.get("MEDKB_DB", DEFAULT_STORE),
        PUBLIC_BASE_URL=os.environ.get("MEDKB_PUBLIC_BASE_URL"),
        MAX_CONTENT_LENGTH=1024 * 1024,
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
                                    "mobile app. Errors are RFC 9457 problem+json."},
        },
    )
    if test_config:
        app.config.update(test_config)

    store = Store(Path(app.config["MEDKB_DB"]))
    model = ReadModel(store, check_interval=app.config["MEDKB_CHECK_INTERVAL"])
    app.extensions["medkb"] = Services(store, model, Delivery(model), Editorial(store), KeyStore(store.root),
                                       Delivery(DraftModel(store)))

    api = Api(app, spec_kwargs={"extra_plugins": [KeyRequired()]})
    app.extensions["medkb.api"] = api
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer",
                                                        "description": "An API key from `medkb keys create`."})
    from api.web import DELIVERY_BLUEPRINTS, EDITORIAL_BLUEPRINTS, OPERATIONS_BLUEPRINTS, PREVIEWED

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
            app.extensions["medkb"].preview.refresh()
        elif request.path.startswith("/v1/"):
            app.extensions["medkb"].delivery.refresh()

    app.after_request(finish_response)

    from api.web.console import bp as console  # HTML pages, not part of the OpenAPI contract

    app.register_blueprint(console)

    @app.route("/docs/assets/<path:filename>")
    def docs_assets(filename):
        import swagger_ui_bundle

        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    return app
