"""`GET /dashboard`: the live routing dashboard, static files shipped inside the package.

The page holds no data; its script polls `GET /v1/gateway/stats`, so whatever protects the API
protects the figures too. Only the files named here are served: no path from the URL reaches the
file system.
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from gateway import errors

__all__ = ["dashboard", "dashboard_asset"]

_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
# Scripts and styles from this origin only: the page loads nothing else and runs no inline code.
_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "cache-control": "no-cache",
}


def _read(name: str) -> bytes:
    return resources.files("gateway").joinpath("static", name).read_bytes()


async def dashboard(request: Request) -> Response:
    return Response(_read("dashboard.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


async def dashboard_asset(request: Request) -> Response:
    name = request.path_params.get("name", "")
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise errors.NotFoundError(f"Unknown path {request.url.path}.", code="unknown_url")
    return Response(_read(name), media_type=media_type, headers=_HEADERS)
