"""Wire security into an app: key ring, rate limiter on the stats store's Redis, the middleware."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gateway.security.keys import KeyRing
from gateway.security.middleware import SecurityMiddleware
from gateway.security.ratelimit import RateLimiter, RedisCounterStore
from gateway.security.reload import KeyReloader

__all__ = ["install_security"]

_log = logging.getLogger("gateway.security")


def install_security(app: Any, settings: Any, config: Any, stats_store: Any,
                     pipeline_paths: Sequence[str] = ()) -> RateLimiter | None:
    """Add `SecurityMiddleware` around every route; returns the limiter to start (None: no limits).
    `pipeline_paths`: the routes whose rate limits the request pipeline charges.

    Sets `app.state.keyring` so `gateway serve` can apply the bind rule before listening, and
    `app.state.key_reloader`, which the app runs to pick up edits of the config's `keys:`.
    """
    master = settings.master_key.get_secret_value() if settings.master_key is not None else None
    keyring = KeyRing(config.keys, master)
    limits = config.rate_limits
    limited = any(k.rpm or k.tpm for k in config.keys) or any(p.active for p in limits.pipelines.values())
    limiter = None
    if limited:
        client = getattr(stats_store, "client", None)  # the Redis stats store's client, when there is one
        store = RedisCounterStore(client) if client is not None else None
        limiter = RateLimiter(limits, store, prefix=getattr(stats_store, "prefix", "gw"))
    open_paths = ["/healthz", "/readyz"]
    if settings.metrics_public:
        open_paths.append("/metrics")
    app.add_middleware(
        SecurityMiddleware, keyring=keyring, limiter=limiter, max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes, open_paths=open_paths, insecure=settings.insecure,
        pipeline_paths=pipeline_paths,
    )
    app.state.keyring = keyring
    app.state.key_reloader = KeyReloader(settings.config, keyring, config, limited=limiter is not None)
    app.state.rate_limiter = limiter  # None without limits; read by tests and ops tooling
    return limiter
