"""``POST /webhooks/stripe``: verify, store and apply Stripe's events; 2xx only after the commit.

Answers: 200 processed (or duplicate / ignored / pending / failed — Stripe must not retry
those); 400 not a genuine fresh Stripe delivery or not an event (nothing stored, counted in
``storefront_webhook_rejected_total{reason}``); 413 body over 256 KB; 500 a database error
(rolled back, not stored) so Stripe retries; 503 no webhook secret configured.

Stripe retries anything but a 2xx for three days, so the line is drawn at what a retry can
change. A signed event whose *effect* fails on its data (a field of the wrong type or out of
range, ``app.money.fields``) will fail the same way on every retry: it is stored as
``failed: <error>``, answered 200, logged and counted, and an operator replays it
(``storefront events failed`` / ``replay``). A signed body that is not an event at all (not
JSON, nested deeper than msgspec decodes, no usable id/type/created/data.object, a
``created`` beyond 64 bits) has no id to store it under, and Stripe never sends one: 400
``malformed_payload``, stored nowhere, counted (Prometheus, and per minute in the database for
the admin dashboard: app/webhooks/rejections.py). A database error (unavailable, lock timeout,
deadlock, connection lost) may pass: 500, so Stripe retries.
"""

from __future__ import annotations

from typing import Any

import msgspec
import structlog
from litestar import Litestar, asgi
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import Counter

from app.money.events import event_fields
from app.settings import Settings
from app.web.hot_paths import HotRoute
from app.web.raw import header_text, read_body, send_bytes
from app.webhooks.ingest import submit_event
from app.webhooks.rejections import tally_of
from app.webhooks.signature import SignatureError, verify

__all__ = ("HOT_ROUTES", "REJECTED", "ROUTES", "WEBHOOK_BODY_LIMIT", "receive_webhook", "stripe_webhook")

log = structlog.get_logger()

WEBHOOK_BODY_LIMIT = 256 * 1024
"""Stripe's events are a few KB; anything this big is not one of them."""

REJECTED = Counter(
    "storefront_webhook_rejected_total", "Webhook deliveries refused before processing", ["reason"]
)
FAILED = Counter("storefront_webhook_failed_total", "Webhook events whose effect raised (answered 5xx)")
FAILED_EVENTS = Counter(
    "storefront_stripe_events_failed_total",
    "Stripe events whose effect failed on their data: stored as failed, waiting for an operator",
    ["type"],
)
OTHER_MODE = Counter(
    "storefront_stripe_events_other_mode_total",
    "Stripe events ignored because their livemode differs from our key's mode",
    ["livemode"],
)
ANSWERED = Counter(
    "storefront_webhook_answered_total",
    "Webhook deliveries answered, by status (the hot path skips Litestar's request metrics)",
    ["status"],
)


_JSON = [(b"content-type", b"application/json")]


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    ANSWERED.labels(status=str(status)).inc()
    await send_bytes(send, status, _JSON, msgspec.json.encode(body))


async def _reject(send: Send, app: Litestar, reason: str, status: int = 400) -> None:
    REJECTED.labels(reason=reason).inc()
    tally_of(app).add(app, reason)  # the admin dashboard's refusals in the last hour
    log.warning("webhook.rejected", reason=reason, status=status)
    await _answer(send, status, {"error": reason})


@asgi("/webhooks/stripe", is_mount=False, copy_scope=True, include_in_schema=False, name="webhooks:stripe")
async def stripe_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    """Stripe's webhook endpoint as a route: what the hot path does not take (other methods)."""
    await receive_webhook(scope, receive, send)


async def _hot_webhook(scope: Scope, receive: Receive, send: Send, _next: ASGIApp) -> None:
    await receive_webhook(scope, receive, send)


async def receive_webhook(scope: Scope, receive: Receive, send: Send) -> None:
    """Stripe's webhook endpoint, raw ASGI.

    ``POST`` is answered ahead of the middleware stack (app/web/hot_paths.py): the webhook is
    the hot write path, and Litestar's request/response machinery and middleware cost more than
    its own work.
    """
    if scope.get("method") != "POST":
        await _answer(send, 405, {"error": "method_not_allowed"})
        return
    app = scope["litestar_app"]
    settings: Settings = app.state["settings"]
    if not settings.stripe_webhook_secrets:
        log.error("webhook.no_secret_configured")
        await _answer(send, 503, {"error": "not_configured"})
        return
    body = await read_body(scope, receive, WEBHOOK_BODY_LIMIT)
    if body is None:
        await _reject(send, app, "too_large", 413)
        return
    try:
        verify(body, header_text(scope, b"stripe-signature"), settings.stripe_webhook_secrets)
    except SignatureError as refused:
        await _reject(send, app, refused.reason)
        return
    try:
        event = msgspec.json.decode(body)
        if not isinstance(event, dict):
            raise ValueError("not an object")
        event_fields(event)
        payload = body.decode("utf-8")
    except (msgspec.DecodeError, ValueError, RecursionError):  # msgspec: RecursionError past its depth
        await _reject(send, app, "malformed_payload")
        return
    try:
        result = await submit_event(app, event, payload)
    except Exception:
        FAILED.inc()
        log.exception("webhook.effect_failed", event_id=event.get("id"), type=event.get("type"))
        await _answer(send, 500, {"error": "processing_failed"})
        return
    if result.failed:
        FAILED_EVENTS.labels(type=result.type).inc()
    if result.other_mode:
        OTHER_MODE.labels(livemode=str(event.get("livemode") is True).lower()).inc()
    await _answer(send, 200, {"received": True, "outcome": result.outcome, "duplicate": result.duplicate})


ROUTES: list[Any] = [stripe_webhook]
HOT_ROUTES: list[HotRoute] = [HotRoute("POST", "/webhooks/stripe", _hot_webhook)]
