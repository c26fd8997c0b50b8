"""Calls to the services, with the user's `session` cookie forwarded.

Every call returns an `ApiResult` — never raises — so pages can show the API's own
error messages next to the fields, or a banner when a service cannot be reached.

The browser signs in and out itself (through the gateway, so that auth's HttpOnly
`session` cookie lands in the browser and no page script can read it); the backend
only reads that cookie from the request headers and forwards it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpx
from opentelemetry.trace import SpanKind, StatusCode

from common.observability.tracing import current_carrier, tracer
from ticketing_web.settings import WebSettings

SESSION_COOKIE = "session"
MAX_SESSION_LENGTH = 4096  # a browser keeps at most ~4 kB per cookie anyway
UNAVAILABLE = "We can't reach our servers right now. Please try again in a moment."
UNEXPECTED = "Something went wrong. Please try again."

# Tests swap this for an httpx.MockTransport (then call `reset_client()`).
transport: httpx.AsyncBaseTransport | None = None


@dataclass
class ApiResult:
    status: int = 0
    data: Any = None
    field_errors: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # messages without a field
    unavailable: bool = False
    next_cursor: str = ""  # a list's X-Next-Cursor: more follow
    total: int | None = None  # a list's X-Total-Count

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @classmethod
    def from_response(cls, status: int, body: Any) -> ApiResult:
        """A service's answer (also what the browser's own calls report back)."""
        result = cls(status=status, data=body)
        if status in (502, 503, 504) or status == 0:
            result.unavailable, result.errors = True, [UNAVAILABLE]
        elif not result.ok:
            result.field_errors, result.errors = read_errors(body)
            if not result.field_errors and not result.errors:
                result.errors = [UNEXPECTED]
        return result


def read_errors(body: Any) -> tuple[dict[str, str], list[str]]:
    """Split `{"errors": [{"message", "field"?}]}` into per-field and general messages
    (the first message per field wins)."""
    fields: dict[str, str] = {}
    general: list[str] = []
    items = body.get("errors") if isinstance(body, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or not isinstance(item.get("message"), str):
            continue
        name = item.get("field")
        if isinstance(name, str) and name:
            fields.setdefault(name, item["message"])
        else:
            general.append(item["message"])
    return fields, general


def session_from_cookie_header(header: str) -> str:
    """The `session` cookie's value in a Cookie request header, or "" (never raises:
    a malformed header is simply no session)."""
    if not isinstance(header, str):
        return ""
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == SESSION_COOKIE:
            value = value.strip().strip('"')
            return value if 0 < len(value) <= MAX_SESSION_LENGTH else ""
    return ""


_client: httpx.AsyncClient | None = None
_client_loop: asyncio.AbstractEventLoop | None = None


def client() -> httpx.AsyncClient:
    """One HTTP client (one connection pool) per process and event loop. It never keeps
    cookies: each call names its user's session itself."""
    global _client, _client_loop
    loop = asyncio.get_running_loop()
    if _client is None or _client_loop is not loop:
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        _client = httpx.AsyncClient(
            transport=transport,
            cookies=no_cookies,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        )
        _client_loop = loop
    return _client


def reset_client() -> None:
    global _client, _client_loop
    _client = _client_loop = None


async def call(
    method: str,
    url: str,
    *,
    session: str = "",
    json: Any = None,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> ApiResult:
    """One call to a service, in a client span whose `traceparent` it sends: the trace
    of what the user clicked starts here and follows the request and its events."""
    with tracer.start_as_current_span(
        f"{method} {_route(url)}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url},
    ) as span:
        sent = {**current_carrier(), **(headers or {})}
        if session:
            sent["cookie"] = f"{SESSION_COOKIE}={session}"
        try:
            response = await client().request(method, url, json=json, headers=sent, timeout=timeout)
        except httpx.HTTPError as exc:
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            return ApiResult.from_response(0, None)
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 500:
            span.set_status(StatusCode.ERROR)
    try:
        body = response.json()
    except ValueError:
        body = None
    result = ApiResult.from_response(response.status_code, body)
    result.next_cursor = response.headers.get("x-next-cursor", "")
    total = response.headers.get("x-total-count", "")
    result.total = int(total) if total.isdigit() else None
    return result


def _route(url: str) -> str:
    """The URL's path with ids as `{id}`: one span name per route, not per ticket."""
    path = httpx.URL(url).path
    return re.sub(r"/[0-9a-fA-F]{24}(?=/|$)", "/{id}", path)


def price_for_api(text: str) -> Any:
    """The form's price text as a JSON number when it is one; otherwise the text itself,
    so the tickets service answers in its own words ("Price must be greater than 0")."""
    try:
        value = Decimal(text.strip())
    except (InvalidOperation, AttributeError):
        return text
    if not value.is_finite():
        return text
    return int(value) if value == value.to_integral_value() else float(value)


def is_id(value: Any) -> bool:
    """An id as the services make them (24 hex digits): anything else never reaches a
    service URL (a deep link is user input)."""
    return (
        isinstance(value, str)
        and len(value) == 24
        and all(c in "0123456789abcdef" for c in value.lower())
    )


NOT_FOUND = ApiResult(status=404, errors=["Not found"])
# Orders learns of a new ticket through the stream, a moment after it is listed: an
# order for a ticket the page has just shown is retried on 404 for about two seconds.
ORDER_404_RETRIES, ORDER_404_DELAY = 4, 0.5


class Services:
    """The service calls the pages make."""

    def __init__(self, settings: WebSettings | None = None) -> None:
        self.settings = settings or WebSettings.from_env()

    async def _call(self, method: str, url: str, **kwargs: Any) -> ApiResult:
        return await call(method, url, timeout=self.settings.api_timeout, **kwargs)

    async def current_user(self, session: str) -> ApiResult:
        return await self._call(
            "GET", f"{self.settings.auth_url}/api/users/currentuser", session=session
        )

    async def list_tickets(self, search: dict[str, str] | None = None) -> ApiResult:
        """A page of tickets for sale; `search`: the API's q, minPrice, maxPrice, sort,
        cursor (empty values left out)."""
        query = {k: v for k, v in (search or {}).items() if v}
        url = httpx.URL(f"{self.settings.tickets_url}/api/tickets", params=query)
        return await self._call("GET", str(url))

    async def get_ticket(self, ticket_id: str) -> ApiResult:
        if not is_id(ticket_id):
            return NOT_FOUND
        return await self._call("GET", f"{self.settings.tickets_url}/api/tickets/{ticket_id}")

    async def create_ticket(self, session: str, title: str, price: str) -> ApiResult:
        body = {"title": title, "price": price_for_api(price)}
        url = f"{self.settings.tickets_url}/api/tickets"
        return await self._call("POST", url, session=session, json=body)

    async def update_ticket(
        self, session: str, ticket_id: str, title: str, price: str
    ) -> ApiResult:
        if not is_id(ticket_id):
            return NOT_FOUND
        body = {"title": title, "price": price_for_api(price)}
        url = f"{self.settings.tickets_url}/api/tickets/{ticket_id}"
        return await self._call("PUT", url, session=session, json=body)

    async def create_order(self, session: str, ticket_id: str, request_key: str = "") -> ApiResult:
        """Reserve the ticket. `request_key` (the Idempotency-Key): the same purchase sent
        again, when its first answer was lost, gets the order it placed, not a second."""
        url = f"{self.settings.orders_url}/api/orders"
        headers = {"Idempotency-Key": request_key} if request_key else None
        with tracer.start_as_current_span("buy ticket"):  # its retries: one trace
            for _ in range(ORDER_404_RETRIES):
                body = {"ticketId": ticket_id}
                result = await self._call("POST", url, session=session, json=body, headers=headers)
                if result.status != 404:
                    break
                await asyncio.sleep(ORDER_404_DELAY)
        return result

    async def my_tickets(self, session: str) -> ApiResult:
        url = f"{self.settings.tickets_url}/api/tickets/mine?limit=200"
        return await self._call("GET", url, session=session)

    async def list_orders(self, session: str) -> ApiResult:
        return await self._call("GET", f"{self.settings.orders_url}/api/orders", session=session)

    async def get_order(self, session: str, order_id: str) -> ApiResult:
        if not is_id(order_id):
            return NOT_FOUND
        url = f"{self.settings.orders_url}/api/orders/{order_id}"
        return await self._call("GET", url, session=session)

    async def cancel_order(self, session: str, order_id: str) -> ApiResult:
        if not is_id(order_id):
            return NOT_FOUND
        url = f"{self.settings.orders_url}/api/orders/{order_id}"
        return await self._call("DELETE", url, session=session)

    async def pay(self, session: str, order_id: str, token: str) -> ApiResult:
        url = f"{self.settings.payments_url}/api/payments"
        body = {"orderId": order_id, "token": token}
        return await self._call("POST", url, session=session, json=body)
