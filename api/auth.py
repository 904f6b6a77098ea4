"""API keys on requests: who is calling, may they, and not too often.

Keys arrive as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Roles
and their permissions live in the domain (``audiofp.services.PERMISSIONS``)
so the CLI and the API agree.

Rate limiting is a token bucket per key held in the worker process: cheap, no
database write per request, but per process, so with N gunicorn workers a key
can reach up to N times the configured rate. Put a shared limiter in front
(the load balancer) when that matters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request

from audiofp.services import Actor, authenticate

from .errors import Forbidden, RateLimited, Unauthorized
from .services import services

F = TypeVar("F", bound=Callable[..., Any])


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; one token per request."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._state: dict[int, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: int) -> float:
        """0 when a request may proceed, else seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                return 0.0
            self._state[key] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _presented_key() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-API-Key") or None


def current_actor() -> Actor:
    return g.actor


def requires(permission: str) -> Callable[[F], F]:
    """Decorate a view: a valid key whose role has ``permission``, within its rate."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            secret = _presented_key()
            if not secret:
                raise Unauthorized("send an API key as 'Authorization: Bearer <key>' or 'X-API-Key'",
                                   headers={"WWW-Authenticate": 'Bearer realm="audiofp"'})
            actor = authenticate(services().store, secret)
            if actor is None:
                raise Unauthorized("the API key is unknown or revoked",
                                   headers={"WWW-Authenticate": 'Bearer realm="audiofp", error="invalid_token"'})
            g.actor = actor  # known from here on: the access log names the key of a refused request too
            if not actor.can(permission):
                raise Forbidden(f"role {str(actor.role)!r} may not {permission}")
            bucket: TokenBucket | None = current_app.extensions["audiofp_rate_limit"]
            if bucket is not None:
                wait = bucket.take(actor.key_id or 0)
                if wait > 0:
                    raise RateLimited(f"rate limit exceeded for key {actor.name!r}; retry in {wait:.1f} s",
                                      headers={"Retry-After": str(max(1, round(wait + 0.5)))})
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def init_app(app: Any) -> None:
    server = app.config["AUDIOFP_SETTINGS"].server
    per_minute = float(server.rate_limit_per_minute)
    burst = int(server.rate_limit_burst)
    app.extensions["audiofp_rate_limit"] = TokenBucket(per_minute, burst) if per_minute > 0 and burst > 0 else None
