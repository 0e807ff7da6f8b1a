from flask import current_app
from flask.views import MethodView

from schemas.http import HealthSchema

from api.web.smorest import Blueprint
from api.store.storage import StoreCorrupt

blp = Blueprint("operations", __name__, description="Liveness and readiness.")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up"""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="store not readable")
    def get(self):
        """The store is open and the read model loaded"""
        services = current_app.extensions["medkb"]
        try:
            services.delivery.refresh(force=True)
        except StoreCorrupt as error:
            current_app.logger.error("not ready: %s", error)
            return {"status": "unavailable"}, 503
        return {"status": "ready", "documents": services.model.count(), "change": services.model.seq}
