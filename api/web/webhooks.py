"""Webhook subscriptions (admin only): create, list, remove, test, delivery log, replay."""
import datetime
import os

from flask import current_app, g, request
from flask.views import MethodView
from flask_smorest import abort

from schemas.webhooks import (DeliveryAttemptSchema, DeliveryLogQuery, ReplaySchema, SubscriptionCreatedSchema,
                              SubscriptionInputSchema, SubscriptionSchema, TestResultSchema)

from api.services.webhooks import Settings, Webhooks
from api.services.webhooks import delivery_id as delivery_id_of
from api.web.auth import require_key
from api.web.smorest import Blueprint

blp = Blueprint("webhooks", __name__, url_prefix="/v1/editorial/webhooks",
                description="Webhook subscriptions: Standard Webhooks signatures, retries, delivery log, replay "
                            "(admin key needed).")


@blp.before_request
def require_admin():
    require_key()
    if request.method != "OPTIONS" and g.key.role != "admin":  # require_key lets OPTIONS through, keyless
        abort(403, message=f"Role '{g.key.role}' may not manage webhooks; needs admin.")


@blp.record_once
def create_service(state):
    app = state.app
    # The app's configuration wins over the environment, so tests can set targets they allow.
    environ = {**os.environ, **{name: str(value) for name, value in app.config.items()
                                if name.startswith("MEDKB_WEBHOOK_")}}
    app.extensions["medkb.webhooks"] = Webhooks(app.extensions["medkb"].store, Settings.from_env(environ))


def webhooks():
    return current_app.extensions["medkb.webhooks"]


def view(subscription, state, secret=False):
    next_attempt = None
    if state.next_attempt_at:
        next_attempt = datetime.datetime.fromtimestamp(state.next_attempt_at, datetime.UTC).isoformat()
    body = {"id": subscription.id, "url": subscription.url, "events": list(subscription.events),
            "types": list(subscription.types), "description": subscription.description,
            "created_at": subscription.created_at, "status": state.status, "cursor": str(state.cursor),
            "failures": state.failures, "next_attempt_at": next_attempt, "last_error": state.last_error,
            "queued_replays": [delivery_id_of(seq) for seq in state.replays]}
    if secret:
        body["secret"] = subscription.secret
    return body


@blp.route("")
class Subscriptions(MethodView):
    @blp.etag
    @blp.response(200, SubscriptionSchema(many=True))
    @blp.doc(operationId="listWebhooks")
    def get(self):
        """Every subscription with where its delivery stands (no secrets)"""
        return [view(subscription, state) for subscription, state in webhooks().list()]

    @blp.arguments(SubscriptionInputSchema())
    @blp.response(201, SubscriptionCreatedSchema)
    @blp.problem(403, "not an admin key")
    @blp.problem(422, "unsafe or invalid URL, unknown event or type")
    @blp.doc(operationId="createWebhook")
    def post(self, body):
        """Subscribe a URL to publication changes; the answer holds the signing secret, shown only once

        Deliveries start with the changes committed after this call.
        """
        service = webhooks()
        subscription = service.subscribe(body["url"], body.get("events"), body.get("types"),
                              body.get("description", ""))
        _, state = service.get(subscription.id)
        return view(subscription, state, secret=True), 201, {"Location": f"{blp.url_prefix}/{subscription.id}"}


@blp.route("/<string:id>")
class Subscription(MethodView):
    @blp.etag
    @blp.response(200, SubscriptionSchema)
    @blp.problem(404, "no such subscription")
    @blp.doc(operationId="getWebhook")
    def get(self, id):
        """One subscription and where its delivery stands"""
        return view(*webhooks().get(id))

    @blp.response(204)
    @blp.problem(404, "no such subscription")
    @blp.doc(operationId="deleteWebhook")
    def delete(self, id):
        """Remove a subscription: nothing more is sent to it"""
        webhooks().remove(id)


@blp.route("/<string:id>/log")
class DeliveryLog(MethodView):
    @blp.etag
    @blp.arguments(DeliveryLogQuery(), location="query", as_kwargs=True)
    @blp.response(200, DeliveryAttemptSchema(many=True))
    @blp.problem(404, "no such subscription")
    @blp.doc(operationId="getWebhookLog")
    def get(self, limit, id):
        """Delivery attempts, newest first: time, status code, latency, error"""
        return webhooks().log(id, limit)


@blp.route("/<string:id>/replay")
class Replay(MethodView):
    @blp.arguments(ReplaySchema())
    @blp.response(202, SubscriptionSchema)
    @blp.problem(404, "no such subscription")
    @blp.problem(422, "cursor not in this store")
    @blp.doc(operationId="replayWebhook")
    def post(self, body, id):
        """Deliver again every wanted change after a cursor, or resume a failing subscription

        Without `since`, delivery resumes where it stopped. Either way a failing subscription becomes
        active again; the worker sends in order, as for new changes.
        """
        service = webhooks()
        since = body.get("since")
        state = service.replay_from(id, int(since) if since is not None else None)
        return view(service.subscriptions.get(id), state)


@blp.route("/<string:id>/deliveries/<string:delivery_id>/replay")
class ReplayDelivery(MethodView):
    @blp.response(202, SubscriptionSchema)
    @blp.problem(404, "no such subscription, or not one of its deliveries")
    @blp.problem(422, "not a delivery id")
    @blp.doc(operationId="replayWebhookDelivery")
    def post(self, id, delivery_id):
        """Send one delivery again, by its webhook-id (queued for the worker; the log shows the attempt)"""
        service = webhooks()
        state = service.replay_delivery(id, delivery_id)
        return view(service.subscriptions.get(id), state)


@blp.route("/<string:id>/test")
class Test(MethodView):
    @blp.response(200, TestResultSchema)
    @blp.problem(404, "no such subscription")
    @blp.doc(operationId="testWebhook")
    def post(self, id):
        """Send a signed `test` message now and report the receiver's answer"""
        attempt = webhooks().send_test(id)
        return {"status": attempt.status, "latency_ms": attempt.latency_ms, "error": attempt.error, "ok": attempt.ok}
