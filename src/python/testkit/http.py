"""Drive an app in-process: lifespan entered (connections made), httpx client on top."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from common.outbox import WRITERS


@asynccontextmanager
async def app_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


# One body that every state-changing route would accept as JSON: the CSRF attack
# sends exactly this, but declared as a form or plain text.
ANY_VALID_BODY = {
    "email": "csrf@test.com",
    "password": "secret1",
    "title": "Concert",
    "price": 20,
    "ticketId": "0123456789abcdef01234567",
    "orderId": "0123456789abcdef01234567",
    "token": "tok_visa",
}
NON_JSON_CONTENT_TYPES = (
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
)


async def non_json_state_changes(
    client: httpx.AsyncClient, cookies: dict[str, str]
) -> dict[str, httpx.Response]:
    """Send every state-changing route of the app behind `client` (an `app_client`) a
    valid body declared as each content type a cross-site form can send:
    `{"POST /api/tickets text/plain": response, ...}`."""
    app: FastAPI = client._transport.app  # type: ignore[attr-defined]
    body = json.dumps(ANY_VALID_BODY)
    statuses = {}
    for route, operations in app.openapi()["paths"].items():
        path = re.sub(r"\{[^}]+\}", ANY_VALID_BODY["orderId"], route)
        for method in {"post", "put", "patch", "delete"} & operations.keys():
            for content_type in NON_JSON_CONTENT_TYPES:
                statuses[f"{method.upper()} {route} {content_type}"] = await client.request(
                    method,
                    path,
                    content=body,
                    headers={"content-type": content_type},
                    cookies=cookies,
                )
    return statuses


UNSUPPORTED_MEDIA_TYPE = {"errors": [{"message": "Content-Type must be application/json"}]}


def not_refused_as_non_json(responses: dict[str, httpx.Response]) -> dict[str, str]:
    """The requests of `non_json_state_changes` that were not refused with 415 (empty
    when the guard holds), with what they got instead."""
    return {
        request: f"{r.status_code} {r.text[:100]}"
        for request, r in responses.items()
        if r.status_code != 415 or r.json() != UNSUPPORTED_MEDIA_TYPE
    }


async def stored_documents(db) -> int:  # type: ignore[no-untyped-def]
    """Every document in every collection of `db` (the CSRF tests: none stored), but
    the outbox's row for the process itself (`outbox_writers`), which no request makes."""
    names = [name for name in await db.list_collection_names() if name != WRITERS]
    return sum([await db[name].count_documents({}) for name in names])


NOT_TEXT = "\\ud800"
"""A lone surrogate as JSON writes it: valid JSON, not valid text (UTF-8 cannot encode
it). Put it in a raw body (`send_raw_json`): httpx's `json=` cannot encode it either."""


async def send_raw_json(  # type: ignore[no-untyped-def]
    client: httpx.AsyncClient, method: str, url: str, body: str, **kwargs
) -> httpx.Response:
    """`body` sent as it is, declared as JSON."""
    headers = {"content-type": "application/json"}
    return await client.request(method, url, content=body.encode(), headers=headers, **kwargs)
