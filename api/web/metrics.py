"""/metrics in the Prometheus text format, counted across every worker process.

`medkb serve` sets PROMETHEUS_MULTIPROC_DIR, so each process writes its samples to files there and
a scrape, answered by any worker, adds them all up. /metrics needs an admin API key
(`Authorization: Bearer ...`) unless MEDKB_METRICS_PUBLIC=1: the numbers describe traffic and
editorial activity, which is not for everyone.
"""
import os
import time

from flask import Response, current_app, g, request
from flask_smorest import abort
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest,
                               values)

from api.services.errors import StorageFull, StorageUnavailable

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("medkb_http_requests", "HTTP requests answered, by route (the URL rule) and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("medkb_http_request_duration_seconds", "Time from routing to the finished response.",
                    ["route", "method"], buckets=BUCKETS)
COMMITS = Histogram("medkb_store_commit_duration_seconds", "Time a store commit takes, waiting for the lock "
                    "included, by kind of change (revision, publish, unpublish, delete, transition).",
                    ["kind"], buckets=BUCKETS)
READ_MODEL_LAG = Gauge("medkb_read_model_lag_changes", "Changes committed to the store that the most behind "
                       "worker's read model had not yet applied, when last measured.", multiprocess_mode="max")
SCHEDULED_PUBLISHES = Counter("medkb_scheduled_publishes", "Documents published by the scheduler when due, by type.",
                              ["type"])
WEBHOOK_DELIVERIES = Counter("medkb_webhook_deliveries", "Webhook delivery attempts, by outcome: delivered (a 2xx "
                             "answer) or failed (any other answer, a refused address or a timeout).", ["outcome"])
WEBHOOK_LATENCY = Histogram("medkb_webhook_delivery_duration_seconds", "Time a webhook delivery attempt takes, "
                            "by outcome.", ["outcome"], buckets=BUCKETS)

LAG_CHECK_INTERVAL = 1.0  # seconds between two measurements of the lag in one worker


def init_app(app):
    app.config.setdefault("MEDKB_METRICS_PUBLIC", os.environ.get("MEDKB_METRICS_PUBLIC", "") in ("1", "true", "yes"))
    store = app.extensions["medkb"].store
    store.commit = timed_commit(store.commit)  # every write of this process goes through Store.commit
    app.add_url_rule("/metrics", "metrics", metrics)
    # The timer starts before every other hook; `observe` is first in its list so that it runs
    # last (Flask runs after_request functions in reverse): the status is that of the response sent.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.after_request_funcs.setdefault(None, []).insert(0, observe)


def timed_commit(commit):
    def timed(change):
        with COMMITS.labels(change.kind).time():
            return commit(change)
    return timed


def webhook_attempted(attempt):
    """Webhooks' on_attempt: counts every delivery attempt the process makes."""
    outcome = "delivered" if attempt.ok else "failed"
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    WEBHOOK_LATENCY.labels(outcome).observe(attempt.latency_ms / 1000)


def count_into(folder):
    """Metrics this process creates from now on are written to `folder`, where a scrape of any
    worker adds them up. prometheus_client reads PROMETHEUS_MULTIPROC_DIR as it creates each value,
    and `medkb serve` picks the folder after this module is imported; the metrics its own process
    counts (the scheduler's) are all labelled, so each value is created later, on first use."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    values.ValueClass = values.get_value_class()


def start_timer():
    request.environ["medkb.started"] = time.perf_counter()
    measure_lag(current_app.extensions["medkb"])


_lag_checked_at = 0.0


def measure_lag(services):
    """At most every LAG_CHECK_INTERVAL: how far this worker's read model trails the store."""
    global _lag_checked_at
    now = time.monotonic()
    # With the store out of reach, asking it would hold the request; the read model logs that.
    if now - _lag_checked_at >= LAG_CHECK_INTERVAL and not services.model.store_unreachable:
        _lag_checked_at = now
        try:
            READ_MODEL_LAG.set(max(0, services.store.last_seq() - services.model.seq))
        except (StorageFull, StorageUnavailable):
            pass  # out of reach since the model last looked: it finds out at its next look


# Label values come from the URL rule and a known method, never from raw client input, so the
# number of series stays bounded whatever clients send.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_series = {}  # (route, method, status) -> its counter and histogram: labels() costs more than inc()


def observe(response):
    rule = request.url_rule
    # The response cache replays this request's answer under the same route.
    route = request.environ["medkb.route"] = rule.rule if rule is not None else "unmatched"
    started = request.environ.get("medkb.started")
    record(route, request.method, response.status_code,
           None if started is None else time.perf_counter() - started)
    return response


def record(route, method, status, seconds):
    key = (route, method if method in METHODS else "other", status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (REQUESTS.labels(key[0], key[1], str(key[2])), LATENCY.labels(key[0], key[1]))
    series[0].inc()
    if seconds is not None:
        series[1].observe(seconds)


def metrics():
    """Prometheus text format: every worker's counts added up."""
    if not current_app.config["MEDKB_METRICS_PUBLIC"]:
        from api.web.auth import require_key

        require_key()
        if g.key.role != "admin":
            abort(403, message="/metrics needs an admin key (or MEDKB_METRICS_PUBLIC=1).")
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
