from flask import current_app
from flask.views import MethodView

from schemas.http import HealthSchema

from api.services.errors import StorageFull, StorageUnavailable, StoreCorrupt
from api.web.context import services
from api.web.smorest import Blueprint

blp = Blueprint("operations", __name__, description="Liveness and readiness.")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.doc(operationId="getHealth")
    def get(self):
        """The process is up

        Liveness: answers 200 while the process can serve requests at all.
        """
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=HealthSchema, description="store not readable")
    @blp.doc(operationId="getReadiness")
    def get(self):
        """The store is open and the read model loaded

        Readiness: the published documents count and the last published change; 503 when the
        store cannot be read, or the read model cannot follow it (a full or failing disk: reads
        are then served from what it holds).
        """
        found = services()
        try:
            found.delivery.refresh(force=True)
        except (StoreCorrupt, StorageFull, StorageUnavailable) as error:
            current_app.logger.error("not ready: %s", error)
            return {"status": "unavailable"}, 503
        # The published change, not the store's: a draft edit moves nothing public.
        return {"status": "ready", "documents": found.model.count(), "change": found.model.published_seq}
