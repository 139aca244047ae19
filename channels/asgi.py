"""The base of our ASGI middlewares: they act on HTTP requests only, and anything else (the
lifespan messages) passes straight to the app, written once (channels and dispatch alike)."""

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """Subclasses write `http`, called for each HTTP request with `self.app` to call on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
