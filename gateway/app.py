"""`create_app(settings)`: build one gateway instance. No module-level state; everything hangs off
`app.state.gateway` so several apps (tests, workers) can live in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway import errors
from gateway.aio import cancel_and_wait
from gateway.asgi import GatewayApp
from gateway.calibration import apply_calibration, load_calibration
from gateway.quality_overlay import apply_quality_overlay, load_quality_overlay
from gateway.catalog import load_catalog, load_config
from gateway.core.budgets import BudgetGate
from gateway.core.decision import Decider
from gateway.core.params import OPENAI_WIRE_ONLY
from gateway.core.pipeline import RequestPipeline
from gateway.core.subscribers import RecentDecisions, feedback_memory, live_stats
from gateway.policy import PolicyStore
from gateway.observability import REQUEST_LOGGER, Observer
from gateway.observability._opslog import configure as configure_ops_log
from gateway.routes.chat import ChatCompletions
from gateway.routes.completions import legacy_completions
from gateway.routes.embeddings import Embeddings
from gateway.routes.messages import CountTokens, Messages
from gateway.routes.responses import Responses
from gateway.routes.dashboard import dashboard, dashboard_asset
from gateway.learning import FeedbackProcessor
from gateway.learning.router_source import RouterSource
from gateway.observability.fleet import FleetHistory
from gateway.routes.explain import explain
from gateway.routes.feedback import feedback
from gateway.routes.gateway_stats import gateway_stats
from gateway.routes.health import healthz, readyz
from gateway.routes.metrics import metrics
from gateway.routes.models import list_models, retrieve_model
from gateway.openapi import install_openapi
from gateway.security.setup import install_security
from gateway.selection.engine import SelectionEngine
from gateway.settings import Settings
from gateway.state import GatewayState
from gateway.stats import StatsConfig, StatsService
from gateway.upstream.forwarder import Forwarder
from gateway.upstream.litellm_adapter import LiteLLMTransport
from gateway.upstream.openai_wire import OpenAIWireTransport

__all__ = ["create_app"]

log = logging.getLogger("gateway")


def _error_response(exc: errors.GatewayError) -> JSONResponse:
    return JSONResponse(errors.error_body(exc), status_code=exc.status, headers=exc.headers or None)


def _install_error_handlers(app: FastAPI) -> None:
    async def on_gateway_error(request: Request, exc: errors.GatewayError) -> JSONResponse:
        return _error_response(exc)

    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        cls = errors.for_status(exc.status_code)
        message = {404: f"Unknown path {request.url.path}.", 405: f"Method {request.method} not allowed."}.get(
            exc.status_code, str(exc.detail)
        )
        return _error_response(cls(message, code=None if exc.status_code != 404 else "unknown_url",
                                   headers=exc.headers))

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(errors.InvalidRequestError(str(exc.errors()[:3])))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Log the detail for operators; the client only learns that it was our fault.
        log.exception("unhandled error on %s", request.url.path)
        return _error_response(errors.InternalError("The gateway hit an internal error."))

    app.add_exception_handler(errors.GatewayError, on_gateway_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build a gateway; raises `CatalogError` or `PolicyError` on a config it cannot serve."""
    settings = settings or Settings()
    configure_ops_log(settings.log_level, REQUEST_LOGGER)
    config = load_config(settings.config)
    calibration = settings.calibration or settings.config.parent / "calibration.yaml"
    if settings.calibration is not None or calibration.exists():  # an explicit path must exist
        config = apply_calibration(config, load_calibration(calibration))
    overlay = settings.quality_overlay or settings.config.parent / "quality.yaml"
    if settings.quality_overlay is not None or overlay.exists():  # measured quality priors (gateway benchmark)
        config = apply_quality_overlay(config, load_quality_overlay(overlay))
    catalog = load_catalog(config)
    # Policies are validated against every configured deployment, usable or not, so a policy that
    # names a deployment whose key is unset here still loads (that expert is simply unavailable).
    configured = load_catalog(config, require_keys=False)
    policies = PolicyStore(settings.policies, {d.name: d.info for d in configured.deployments.values()})
    stats = StatsService.from_url(
        settings.redis_url,
        refresh_s=settings.stats_refresh_s,
        config=StatsConfig(
            half_life_s=settings.stats_half_life_s,
            failure_threshold=settings.circuit_failure_threshold,
            error_rate_threshold=settings.circuit_error_rate,
            cooldown_s=settings.circuit_cooldown_s,
            request_ttl_s=settings.feedback_ttl_s or 1.0,
            history_ttl_s=settings.dashboard_history_s,
        ),
    )
    engine = SelectionEngine()
    secrets = catalog.secrets()
    transports = {
        "litellm": LiteLLMTransport(
            stream_idle_timeout_s=settings.stream_idle_timeout_s, secrets=secrets, drop_params=OPENAI_WIRE_ONLY,
            max_response_bytes=settings.max_response_bytes, stream_timeout_s=settings.stream_timeout_s,
        ),
        "openai": OpenAIWireTransport(
            connect_timeout_s=settings.connect_timeout_s,
            stream_idle_timeout_s=settings.stream_idle_timeout_s,
            secrets=secrets,
            max_response_bytes=settings.max_response_bytes,
            stream_timeout_s=settings.stream_timeout_s,
        ),
    }
    forwarder = Forwarder(
        transports,
        max_retries=settings.max_retries,
        backoff_base_s=settings.retry_backoff_s,
        max_fallbacks=settings.max_fallbacks,
        admit=stats.admit, admit_now=stats.admit_now,
    )
    learner = FeedbackProcessor(stats, None, max_remembered=settings.feedback_memory, wait_s=settings.feedback_wait_s,
                                shared_records=settings.feedback_ttl_s > 0)
    # The trained router model: reloaded when its directory changes; its learning shared through Redis.
    router = None if settings.router_model is None else RouterSource(
        settings.router_model, learner, stats, models=catalog.deployments, reload_s=settings.policy_reload_s,
        sync_s=settings.learning_sync_s, checkpoint_s=settings.learning_checkpoint_s,
    )
    if router is not None:
        learner.listeners = (router.on_feedback,)  # the current model's calibration check
    decider = Decider(
        catalog, engine, lambda: policies.current, stats.live_for, lambda: stats.spend,
        allow_unknown_pipeline=settings.allow_unknown_pipeline,
        router=router, domain_min_confidence=settings.domain_min_confidence,
        keep_features=lambda: learner.wants_features, stats_refresh_s=settings.stats_refresh_s,
    )
    # Feedback keeps a per-domain posterior only for a domain the decisions know (a client's made-up
    # X-Task-Domain would otherwise grow the stats without bound), asked per score: reloads add names.
    learner.known_domains = decider.known_domains
    budgets = BudgetGate(
        stats, max_attempts=settings.max_fallbacks + 1,
        # A hold outlives the longest request it can stand for, then frees itself.
        hold_ttl_s=settings.request_timeout_s + settings.stream_timeout_s + 60,
    )
    pipeline = RequestPipeline(
        decider, forwarder, stats, budgets,
        request_timeout_s=settings.request_timeout_s, stream_timeout_s=settings.stream_timeout_s,
    )
    observer = Observer(
        settings, catalog, live=lambda: stats.live, spend=lambda: stats.spend, policies=lambda: policies.current
    )
    recent = RecentDecisions()
    for subscriber in (live_stats(stats), feedback_memory(learner), recent, observer.on_finished):
        pipeline.subscribe(subscriber)
    # Breaker transitions reach the metrics as they happen (the state gauge is read at scrape).
    stats.add_circuit_listener(observer.on_circuit)
    stats.add_refresh_listener(decider.refill)
    state = GatewayState(
        settings=settings, catalog=catalog, policies=policies, stats=stats, pipeline=pipeline,
        feedback=learner, recent=recent, transports=transports, observer=observer, created=int(time.time()),
        router=router,
        # With Redis the dashboard and /v1/gateway/stats show every worker's and replica's history.
        fleet=FleetHistory(stats.store, observer.series, recent) if stats.shared else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        if limiter is not None:
            await limiter.start()
        # Edits of the config's `keys:` (revoked, rotated, re-bound keys) apply without a restart.
        keys = asyncio.create_task(app.state.key_reloader.run(settings.policy_reload_s), name="key-reloader")
        try:
            yield
        finally:
            await cancel_and_wait(keys)
            if limiter is not None:
                await limiter.stop()
            await state.stop()

    telemetry = None if settings.otel_telemetry else {"tracing": False, "metrics": False, "logs": False}
    # redirect_slashes=False: Starlette answers `/v1/feedback/` with a bare 307 whose Location is
    # built from the client's Host header (an open redirect); every unknown path, a trailing slash
    # included, is the same JSON 404 `unknown_url` the fast routes give.
    app = GatewayApp(title="gateway", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                     telemetry=telemetry, redirect_slashes=False)
    app.state.gateway = state
    _install_error_handlers(app)
    # Chat completions, and the other model endpoints: the same pipeline behind a translation
    # (gateway/translate/). The pipeline charges their rate limits; the edge charges the rest.
    model_routes = (ChatCompletions(pipeline), Responses(pipeline), Messages(pipeline), Embeddings(pipeline))
    limiter = install_security(app, settings, config, stats.store,  # wraps every route, probes excepted
                               pipeline_paths=[route.path for route in model_routes])
    pipeline.limiter = limiter
    install_openapi(app, decider.valid_names())  # the raw chat route and the request bodies
    for route in model_routes:
        app.add_fast_route(route.path, route)
    app.add_fast_route(CountTokens.path, CountTokens(decider))
    app.add_api_route("/v1/completions", legacy_completions, methods=["POST"])
    app.add_api_route("/v1/selection/explain", explain, methods=["POST"])
    app.add_api_route("/v1/feedback", feedback, methods=["POST"])
    # Every GET route answers HEAD too (RFC 9110, 9.1: a general-purpose server supports both):
    # FastAPI, unlike Starlette, does not add it. Load balancers probe with it, and monitors and
    # caches check a resource with it.
    read = ["GET", "HEAD"]
    app.add_api_route("/v1/models", list_models, methods=read)
    app.add_api_route("/v1/models/{model_id:path}", retrieve_model, methods=read)
    app.add_api_route("/v1/gateway/stats", gateway_stats, methods=read)
    if settings.dashboard_enabled:
        # Same protection as the /v1 routes: the page's data comes from /v1/gateway/stats.
        app.add_api_route("/dashboard", dashboard, methods=read)
        app.add_api_route("/dashboard/{name}", dashboard_asset, methods=read)
    if settings.metrics_enabled:
        app.add_api_route("/metrics", metrics, methods=read)
    app.add_api_route("/healthz", healthz, methods=read)
    app.add_api_route("/readyz", readyz, methods=read)
    return app
