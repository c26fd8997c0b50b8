"""How long a browser may keep what the web server sends it.

Reflex's prod server sends no `Cache-Control`, so browsers keep its pages by heuristic
(a tenth of their age: a week-old build's pages for most of a day) and may open an older
version's page, whose code is gone, after a deploy. The built frontend's files under
`/assets/` are named by their content (each build gives new names): they are kept a
year. A page (HTML) is checked with the server each time (`no-cache`; its ETag makes
that a 304): a tab always starts from the version being served.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ASSETS = "/assets/"
FOREVER = b"public, max-age=31536000, immutable"
CHECK_EACH_TIME = b"no-cache"


def cache_by_kind(app: ASGIApp) -> ASGIApp:
    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        path = scope.get("path", "")

        async def with_cache_control(message: Message) -> None:
            if message["type"] == "http.response.start":
                rule = _rule(path, message["status"], message.get("headers", []))
                if rule is not None:
                    message = {
                        **message,
                        "headers": [*message["headers"], (b"cache-control", rule)],
                    }
            await send(message)

        await app(scope, receive, with_cache_control)

    return serve


def _rule(path: str, status: int, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    names = {name.lower(): value for name, value in headers}
    if b"cache-control" in names:
        return None  # the app said it itself
    if path.startswith(ASSETS):
        return FOREVER if status in (200, 304) else None
    if names.get(b"content-type", b"").startswith(b"text/html"):
        return CHECK_EACH_TIME
    return None
