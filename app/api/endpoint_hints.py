"""What to use instead: the message for an API path that does not exist or a wrong method.

A 405 names the methods the path does take (and the endpoint that does the same job in
another shape); a 404 under /v1/ names the nearest real endpoints. Both point to /docs.
The endpoints are read from the app's own OpenAPI schema, so the hints follow the API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher
from typing import Any

__all__ = ["what_to_use_instead"]

API_PREFIX = "/v1/"
# The OpenAPI path item keys that are methods (a path item may also carry "parameters").
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

# Endpoints that take the same thing in another shape, so a client that picked the wrong
# method on one is told about the other too.
SAME_JOB: dict[str, tuple[str, ...]] = {
    "/v1/blobs/{sha256}": ("POST /v1/uploads (a form with one or more files)",),
    "/v1/uploads": ("PUT /v1/blobs/{sha256} (one file as the raw body)",),
}
DOCS = "Every endpoint is listed at /docs."
NEAREST = 3
# Below this likeness a path is not offered as "did you mean": it would only confuse.
CLOSE_ENOUGH = 0.75
# A path longer than this is cut in the message; the client knows what it sent.
SHOWN_PATH = 120

Endpoints = dict[str, list[str]]  # path template -> its methods, upper case


def endpoints_of(schema: Mapping[str, Any]) -> Endpoints:
    """Each path template of the schema with its methods (HEAD only where it stands alone)."""
    found: Endpoints = {}
    for template, item in schema.get("paths", {}).items():
        methods = [m.upper() for m in METHODS if m in item]
        found[template] = [m for m in methods if m != "HEAD"] or methods
    return found


def matches(path: str, template: str) -> bool:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def wrong_method(method: str, template: str, endpoints: Endpoints) -> str:
    """The 405 message: the path's real methods, then the endpoints doing the same job."""
    choices = [f"{m} {template}" for m in endpoints[template]] + list(SAME_JOB.get(template, ()))
    return f"{template} does not take {method}. Use {' or '.join(choices)}. {DOCS}"


def likeness(path: str, template: str) -> float:
    """How alike a requested path and a template are, the template's parameters filled."""
    given = path.rstrip("/").split("/")
    filled = [
        given[i] if part.startswith("{") and i < len(given) else part
        for i, part in enumerate(template.split("/"))
    ]
    return SequenceMatcher(None, "/".join(given), "/".join(filled)).ratio()


def unknown_path(method: str, path: str, endpoints: Endpoints) -> str:
    """The 404 message for a path no endpoint has: the nearest real ones, then /docs."""
    ranked = sorted(endpoints, key=lambda template: likeness(path, template), reverse=True)
    near: list[str] = []
    for template in ranked[:NEAREST]:
        if likeness(path, template) < CLOSE_ENOUGH:
            break
        methods = [m for m in endpoints[template] if m == method] or endpoints[template]
        near += [f"{m} {template}" for m in methods]
    shown = path if len(path) <= SHOWN_PATH else path[: SHOWN_PATH - 1] + "…"
    start = f"There is no endpoint {method} {shown}."
    if near:
        return f"{start} Did you mean {' or '.join(near[:NEAREST])}? {DOCS}"
    return f"{start} {DOCS}"


def what_to_use_instead(
    status: int,
    method: str,
    path: str,
    schema: Mapping[str, Any],
    websockets: Sequence[str] = (),
) -> str | None:
    """A better message for the router's own 404 or 405 on an API path; None keeps its own.

    A 404 that a handler raised on an endpoint that exists (an unknown item) is left alone.
    `websockets` are the WebSocket paths, which the OpenAPI schema does not list.
    """
    if not path.startswith(API_PREFIX) or status not in (404, 405):
        return None
    if any(matches(path, template) for template in websockets):
        return (
            f"{path} is a WebSocket: connect to it with a WebSocket client (ws:// or wss://) "
            "and the admin token, not with a plain HTTP request."
        )
    endpoints = endpoints_of(schema)
    same_path = [template for template in endpoints if matches(path, template)]
    if any(method in endpoints[template] for template in same_path):
        return None
    if status == 405 and same_path:
        return wrong_method(method, same_path[0], endpoints)
    if status == 404:
        return unknown_path(method, path, endpoints)
    return None
