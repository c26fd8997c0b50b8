"""ASGI middleware: a request id on every request, JSON-only state changes, and a cap on
request body size."""

from __future__ import annotations

import json
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import CustomError, PayloadTooLargeError, UnsupportedMediaTypeError
from common.observability import logs

REQUEST_ID_HEADER = "x-request-id"
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json_or_absent(content_type: bytes) -> bool:
    """The CSRF guard's test. A cross-site HTML form can only send
    `application/x-www-form-urlencoded`, `multipart/form-data` or `text/plain`, and a
    cross-site `fetch` cannot send `application/json` without a CORS preflight (which no
    service answers): so a state change that carries a body must say it is JSON. A
    request with no body and no Content-Type (sign-out, cancel) is allowed."""
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type in (b"", b"application/json") or media_type.endswith(b"+json")


class RequestContextMiddleware:
    """Tags each request with an id (the caller's `X-Request-Id` or a new one), echoed in
    the response and used in error logs; refuses a state-changing request whose body is
    not declared JSON with 415 (the CSRF guard: `is_json_or_absent`), and bodies over
    `max_body_bytes` with 413.

    The body is read up front (it is small: API bodies are capped) so an oversized one
    is refused before any handler runs, whether or not it declared its length.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")[:64]
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = logs.request_id.set(request_id)  # on every log line of this request
        try:
            await self._serve(scope, receive, send, headers, request_id)
        finally:
            logs.request_id.reset(token)

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        request_id: str,
    ) -> None:

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        if scope["method"] in STATE_CHANGING_METHODS and not is_json_or_absent(
            headers.get(b"content-type", b"")
        ):
            await _reject(send_with_id, UnsupportedMediaTypeError())
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reject(send_with_id, PayloadTooLargeError())
            return
        body, first_other = await self._read_body(receive)
        if body is None:
            await _reject(send_with_id, PayloadTooLargeError())
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return first_other or await receive()

        await self.app(scope, replay, send_with_id)

    async def _read_body(self, receive: Receive) -> tuple[bytes | None, Message | None]:
        """The whole body, or None if it exceeds the cap; plus a non-body message
        (a disconnect) met on the way, to hand on to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks), message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None, None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None


async def _reject(send: Send, error: CustomError) -> None:
    body = json.dumps({"errors": error.serialize()}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
