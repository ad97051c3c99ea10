"""Assemble the Litestar application from the feature packages."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.logging.config import StructLoggingConfig
from litestar.plugins.flash import FlashConfig, FlashPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.stores.base import Store
from litestar.stores.registry import StoreRegistry

from app.accounts.auth import SignInRequired, provide_current_user, provide_user, sign_in_required_handler
from app.accounts.limits import STATE_KEY as LIMITER
from app.accounts.limits import make_limiter
from app.accounts.routes import ROUTES as ACCOUNT_ROUTES
from app.accounts.sign_in_links import ROUTES as SIGN_IN_LINK_ROUTES
from app.admin.routes import admin_router
from app.api.auth import STATE_KEY as API_STATE
from app.api.auth import ApiContext, KeyCache
from app.api.hot import HOT_ROUTES as API_HOT_ROUTES
from app.api.problems import api_aware
from app.api.routes import ROUTES as API_ROUTES
from app.api.routes import openapi_config
from app.catalogue.page_cache import pricing_fast_path
from app.catalogue.reload import CatalogueHolder
from app.catalogue.routes import ROUTES as CATALOGUE_ROUTES
from app.catalogue.views import price_statement
from app.checkout.prices import price_check
from app.checkout.routes import ROUTES as CHECKOUT_ROUTES
from app.checkout.status import order_status_fast_path
from app.cli import StorefrontCLIPlugin
from app.db.base import KeyValueStore
from app.db.config import make_alchemy_config
from app.db.installation import InstallationId
from app.db.writer import WriterPlugin
from app.expiry.runner import start_expiry_sweeper
from app.expiry.runner import stop as stop_expiry_sweeper
from app.host_webhooks.delivery import deliverer_lifespan
from app.i18n.web import ROUTES as I18N_ROUTES
from app.mail.dev import ROUTES as DEV_MAIL_ROUTES
from app.mail.worker import mail_lifespan
from app.reconcile.runner import start_periodic_reconcile
from app.settings import PROJECT_ROOT, Settings, get_settings
from app.stripe_gateway import StripeGateway
from app.web.errors import ROUTES as ERROR_ROUTES
from app.web.errors import http_exception_handler, internal_error_handler
from app.web.health import ROUTES as HEALTH_ROUTES
from app.web.hot_paths import hot_paths
from app.web.identity import ROUTES as IDENTITY_ROUTES
from app.web.identity import template_globals
from app.web.middleware import locale_middleware
from app.web.raw import SESSION_COOKIE
from app.web.requests import StorefrontRequest
from app.web.sandbox_mount import sandbox_mount
from app.web.security import metrics_guard, security_headers_hook
from app.web.sessions import RotatingSessionConfig, session_store
from app.web.static_assets import static_assets_handler
from app.web.templating import template_config
from app.web.transactions import commit_before_session, read_only_requests
from app.webhooks.routes import HOT_ROUTES as WEBHOOK_HOT_ROUTES
from app.webhooks.routes import ROUTES as WEBHOOK_ROUTES

FORM_BODY_LIMIT = 64 * 1024
"""Largest request body we accept anywhere but the webhook; forms are tiny."""


class MetricsController(PrometheusController):
    """``/metrics`` for operators only (see ``metrics_guard``)."""

    guards = (metrics_guard,)


def _stores(settings: Settings, alchemy: Any) -> dict[str, Store]:
    """Sessions live where every replica sees them: Redis or the database.

    Rate-limit counters are not a Litestar store (its read-then-write lets concurrent attempts
    through): see app/accounts/limits.py.
    """
    if settings.redis_url:
        from litestar.stores.redis import RedisStore

        root = RedisStore.with_client(url=settings.redis_url, namespace="storefront")
        return {"sessions": root.with_namespace("sessions")}
    return {"sessions": session_store(alchemy, KeyValueStore)}


def _stderr_logger_factory() -> Any:
    """Litestar's choice of logger (JSON bytes unless stderr is a terminal), writing to stderr."""
    if sys.stderr.isatty():
        return structlog.WriteLoggerFactory(sys.stderr)
    binary = getattr(sys.stderr, "buffer", None)
    return structlog.BytesLoggerFactory(binary) if binary is not None else None


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the shop from ``settings`` (default: read from the environment); the only way an app is made."""
    settings = settings or get_settings()

    logging_config = StructLoggingConfig(
        # Lines go to stderr: stdout is the commands' output (``storefront ledger export > file.csv``).
        logger_factory=_stderr_logger_factory(),
        # Drop lines below the configured level before any processor runs (cheap on hot paths).
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(settings.log_level)),
        log_exceptions="always" if settings.debug else "debug",
        standard_lib_logging_config=None,
        # Module-level loggers must follow a later configure() (several apps per process in tests,
        # structlog.testing.capture_logs); the lookup it saves is cheap next to writing a line.
        cache_logger_on_first_use=False,
    )
    # Per-request "HTTP Request"/"HTTP Response" lines cost more than serving the cached pricing page
    # itself, so they are written only when debugging; every line that is written still carries the
    # request id (bound by the first middleware, app/web/hot_paths.py).
    structlog_plugin = StructlogPlugin(
        config=StructlogConfig(
            structlog_logging_config=logging_config,
            enable_middleware_logging=settings.debug or settings.log_level == "DEBUG",
        )
    )
    alchemy = make_alchemy_config(settings)
    installation = InstallationId(alchemy.get_engine)
    gateway = StripeGateway(settings, installation_id=installation.get)
    holder = CatalogueHolder(settings.pricing_path, check=price_check(gateway))
    limiter = make_limiter(settings.redis_url, alchemy.get_engine(), settings.trusted_proxies)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await holder.verify()  # a pack's stripe_price Stripe contradicts: refuse to start
        await holder.start()
        await installation.preload()
        background = []
        if settings.reconcile_interval_seconds > 0:
            background.append(await start_periodic_reconcile(app))
        sweeper = start_expiry_sweeper(app, alchemy.get_engine())
        try:
            yield
        finally:
            await stop_expiry_sweeper(sweeper)
            for task in background:
                task.cancel()
            await holder.stop()
            await gateway.close()

    lifespans: list[Any] = [lifespan, limiter.lifespan]
    if settings.host_webhooks_deliver:
        lifespans.append(deliverer_lifespan)  # app/host_webhooks/delivery.py
    if settings.mail_deliver:
        lifespans.append(mail_lifespan)  # app/mail/worker.py
    # Each feature package lists its own routes; this is the one place they are put together.
    route_handlers: list[Any] = [
        *CATALOGUE_ROUTES,
        *ACCOUNT_ROUTES,
        *SIGN_IN_LINK_ROUTES,
        *API_ROUTES,
        *I18N_ROUTES,
        *CHECKOUT_ROUTES,
        admin_router(),  # /admin, every handler behind the admin guard (app/admin/routes.py)
        *WEBHOOK_ROUTES,
        *HEALTH_ROUTES,
        *IDENTITY_ROUTES,
        *ERROR_ROUTES,
        MetricsController,
        # In memory, gzipped once, ETag + long cache headers (see app/web/static_assets.py).
        static_assets_handler(PROJECT_ROOT / "static"),
    ]
    if not settings.is_production:
        route_handlers.extend(DEV_MAIL_ROUTES)  # /dev/mail shows reset links: never in production
    if settings.sandbox_mounted:
        mount, sandbox_lifespan = sandbox_mount(settings)
        route_handlers.append(mount)
        lifespans.append(sandbox_lifespan)

    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_secure=settings.is_production,
        cookie_samesite="lax",
        exclude=["/webhooks/", "/sandbox", "/metrics", "/healthz", "/static", "/api/"],
    )
    app = Litestar(
        route_handlers=route_handlers,
        lifespan=lifespans,
        plugins=[
            SQLAlchemyPlugin(config=alchemy),
            HTMXPlugin(),
            FlashPlugin(
                config=FlashConfig(
                    template_config=(
                        templates := template_config(
                            debug=settings.debug,
                            **template_globals(settings),
                            price_statement=price_statement(settings.automatic_tax),
                        )
                    )
                )
            ),
            structlog_plugin,
            StorefrontCLIPlugin(),
            WriterPlugin(),
        ],
        template_config=templates,
        middleware=[
            # Request ids for all; webhooks and the API's hottest calls answered before the rest
            # (app/web/hot_paths.py).
            hot_paths([*WEBHOOK_HOT_ROUTES, *API_HOT_ROUTES]),
            locale_middleware,
            pricing_fast_path,  # anonymous GET / from the page cache; needs the locale, skips the session
            order_status_fast_path,  # final order-status polls from memory (app/checkout/status.py)
            # and the Prometheus middleware, which alone costs a third of its throughput; it counts itself
            PrometheusConfig(
                app_name="storefront", group_path=True, exclude=["/static", "/metrics"]
            ).middleware,
            read_only_requests,  # before the session is read: see app/web/transactions.py
            RotatingSessionConfig(
                key=SESSION_COOKIE,  # the fast paths look for this cookie before the middleware runs
                store="sessions",
                secure=settings.is_production,
                samesite="lax",
                httponly=True,
                max_age=14 * 24 * 3600,
                exclude=["/static", "/webhooks/", "/sandbox", "/healthz", "/metrics", "/api/"],
            ).middleware,
            commit_before_session(alchemy),  # innermost: commit before sessions are saved
        ],
        csrf_config=csrf,
        # /static sends its own precompressed copies; the cached pricing page has its own gzip too.
        compression_config=CompressionConfig(
            backend="gzip", gzip_compress_level=6, minimum_size=500, exclude=["/static"]
        ),
        stores=StoreRegistry(stores=_stores(settings, alchemy)),
        exception_handlers={
            # Under /api both answer RFC 9457 problem details instead (app/api/problems.py).
            HTTPException: api_aware(http_exception_handler),
            SignInRequired: sign_in_required_handler,
            Exception: api_aware(internal_error_handler),
        },
        request_max_body_size=FORM_BODY_LIMIT,
        request_class=StorefrontRequest,
        # On every response, the fast paths', static files' and unmatched paths' included.
        before_send=[security_headers_hook(settings)],
        debug=settings.debug,
        state=State(
            {
                "settings": settings,
                "catalogue": holder,
                "stripe": gateway,
                LIMITER: limiter,
                API_STATE: ApiContext(
                    alchemy.get_engine(),
                    limiter,
                    settings.api_rate_per_minute,
                    KeyCache(settings.api_key_cache_seconds),
                ),
            }
        ),
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "catalogue": Provide(lambda: holder, sync_to_thread=False),
            "stripe": Provide(lambda: gateway, sync_to_thread=False),
            "current_user": Provide(provide_current_user),
            "user": Provide(provide_user),
        },
        # The host API's schema and docs under /api; the shop's pages stay out of the schema.
        openapi_config=openapi_config(),
        include_in_schema=False,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    structlog.get_logger().debug("app.created", env=settings.env, sandbox=settings.sandbox_mounted)
    return app
