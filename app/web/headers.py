"""Security headers on every response, and a strict Content-Security-Policy on ours.

A pure ASGI middleware (it never buffers a body, so uploads stream as before). The page
loads nothing from elsewhere and runs no inline script or style, so the policy allows only
this origin. The API docs come from this origin too: /docs starts Swagger UI with an inline
script, so it keeps no CSP; /redoc gets one that lets ReDoc add its styles and search worker
and nothing else (its bundle would fetch a logo from its vendor's CDN).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "SecurityHeaders"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

# same-origin, not no-referrer: with no-referrer, browsers send `Origin: null` on our own
# form posts, and the Origin check could no longer tell them from a forged one.
_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
_CSP = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())
_REDOC_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; worker-src blob:; frame-ancestors 'none'; "
    b"base-uri 'none'; form-action 'none'",
)
_DOCS = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_ALWAYS)
        path = str(scope.get("path", ""))
        if path.startswith("/redoc"):
            extra.append(_REDOC_CSP)
        elif not path.startswith(_DOCS):
            extra.append(_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in extra if h[0] not in present),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
