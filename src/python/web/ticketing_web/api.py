"""Calls to the auth and tickets services, with the user's session cookie forwarded.

Every call returns an `ApiResult` — never raises — so pages can show the API's own
error messages next to the fields, or a banner when a service cannot be reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from ticketing_web.settings import WebSettings

SESSION_COOKIE = "session"
UNAVAILABLE = "We can't reach our servers right now. Please try again in a moment."
UNEXPECTED = "Something went wrong. Please try again."

# Tests swap this for an httpx.MockTransport.
transport: httpx.AsyncBaseTransport | None = None


@dataclass
class ApiResult:
    status: int = 0
    data: Any = None
    field_errors: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # messages without a field
    session: str | None = None  # a new `session` cookie value, if the service set one
    unavailable: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


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


async def call(
    method: str,
    url: str,
    *,
    session: str = "",
    json: Any = None,
    params: dict[str, Any] | None = None,
    timeout: float = 10.0,
) -> ApiResult:
    cookies = {SESSION_COOKIE: session} if session else None
    try:
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            response = await client.request(method, url, json=json, params=params, cookies=cookies)
    except httpx.HTTPError:
        return ApiResult(unavailable=True, errors=[UNAVAILABLE])
    try:
        body = response.json()
    except ValueError:
        body = None
    result = ApiResult(status=response.status_code, data=body)
    if SESSION_COOKIE in response.cookies:
        result.session = response.cookies[SESSION_COOKIE]
    if response.status_code in (502, 503, 504):
        result.unavailable, result.errors = True, [UNAVAILABLE]
    elif not result.ok:
        result.field_errors, result.errors = read_errors(body)
        if not result.field_errors and not result.errors:
            result.errors = [UNEXPECTED]
    return result


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


def format_money(price: Any) -> str:
    try:
        return f"${Decimal(str(price)):,.2f}"
    except (InvalidOperation, ValueError):
        return str(price)


class Services:
    """The service calls the pages make."""

    def __init__(self, settings: WebSettings | None = None) -> None:
        self.settings = settings or WebSettings.from_env()

    async def _auth(self, method: str, path: str, **kwargs: Any) -> ApiResult:
        url = f"{self.settings.auth_url}/api/users{path}"
        return await call(method, url, timeout=self.settings.api_timeout, **kwargs)

    async def _tickets(self, method: str, path: str = "", **kwargs: Any) -> ApiResult:
        url = f"{self.settings.tickets_url}/api/tickets{path}"
        return await call(method, url, timeout=self.settings.api_timeout, **kwargs)

    async def current_user(self, session: str) -> ApiResult:
        return await self._auth("GET", "/currentuser", session=session)

    async def signup(self, email: str, password: str) -> ApiResult:
        return await self._auth("POST", "/signup", json={"email": email, "password": password})

    async def signin(self, email: str, password: str) -> ApiResult:
        return await self._auth("POST", "/signin", json={"email": email, "password": password})

    async def signout(self, session: str) -> ApiResult:
        return await self._auth("POST", "/signout", session=session)

    async def list_tickets(self) -> ApiResult:
        return await self._tickets("GET")

    async def get_ticket(self, ticket_id: str) -> ApiResult:
        return await self._tickets("GET", f"/{ticket_id}")

    async def create_ticket(self, session: str, title: str, price: str) -> ApiResult:
        body = {"title": title, "price": price_for_api(price)}
        return await self._tickets("POST", session=session, json=body)

    async def update_ticket(
        self, session: str, ticket_id: str, title: str, price: str
    ) -> ApiResult:
        body = {"title": title, "price": price_for_api(price)}
        return await self._tickets("PUT", f"/{ticket_id}", session=session, json=body)
