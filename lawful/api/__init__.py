"""The HTTP API (FastAPI): `create_app(engine)`, API keys with scopes, `lawful serve`.

See docs/api.md. The Typer apps are in lawful.api.cli (`keys_app`, `serve`).
"""

from lawful.api.app import ROUTE_PREFIX, Access, create_app
from lawful.api.errors import ApiError
from lawful.api.keys import ApiKey, ApiKeyError, ApiKeys, Scope
from lawful.api.ratelimit import Limit, RateLimiter

__all__ = [
    "ROUTE_PREFIX",
    "Access",
    "ApiError",
    "ApiKey",
    "ApiKeyError",
    "ApiKeys",
    "Limit",
    "RateLimiter",
    "Scope",
    "create_app",
]
