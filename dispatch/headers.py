"""Security headers on every answer: the report form, the receipt pages, the JSON API, the
console, the API docs, errors and static files alike (one middleware, outside everything).

The policy allows only our own scripts, styles and images: no inline script anywhere, no
CDN (the API docs' Swagger UI is served from the `fastapi-swagger` wheel's files). The docs page
alone may use inline styles, which Swagger UI sets as it renders. Personal data must not
linger in caches, so answers are `no-store` unless a route chose otherwise (static files
may be cached). Over https (as the trusted proxy saw it), browsers are told to stay on it.
"""

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from channels.asgi import HttpMiddleware

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
DOCS_PAGES = ("/docs", "/console/api-docs")
STATIC_PREFIX = "/static/"

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000"


class SecurityHeaders(HttpMiddleware):
    """ASGI middleware adding the headers a route did not set itself."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if path in DOCS_PAGES:
                    headers["Content-Security-Policy"] = DOCS_CSP
                if not path.startswith(STATIC_PREFIX):
                    headers.setdefault("Cache-Control", "no-store")
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
