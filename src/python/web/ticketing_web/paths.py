"""Pages keep the URL they were asked for: `/my-tickets`, not `/my-tickets/`.

Reflex's prod server serves each page as `<route>/index.html` through Starlette's
`StaticFiles(html=True)`, which answers a directory asked for without its slash with a
redirect to `<route>/`. This wrapper follows that one redirect inside the server, so the
browser gets the page at the address it asked for (and a shared link stays as shared).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REDIRECTS = {301, 302, 307, 308}


def pages_without_trailing_slash(app: ASGIApp) -> ASGIApp:
    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or path.endswith("/"):
            await app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_redirect_to_slash(message: Message) -> None:
            if held or _is_redirect_to(message, path + "/"):
                held.append(message)  # swallowed: the page is served below instead
            else:
                await send(message)

        await app(scope, receive, hold_redirect_to_slash)
        if held:
            await app(_with_path(scope, path + "/"), receive, send)

    return serve


def _is_redirect_to(message: Message, target: str) -> bool:
    if message["type"] != "http.response.start" or message["status"] not in REDIRECTS:
        return False
    location = dict(message.get("headers", [])).get(b"location", b"").decode("latin-1")
    return urlsplit(location).path == target


def _with_path(scope: Scope, path: str) -> Scope:
    return {**scope, "path": path, "raw_path": path.encode()}
