"""FastAPI dependencies for what the app factory puts on `app.state`.

Routes ask for these instead of importing globals, so tests can override them
(`app.dependency_overrides[get_outbox] = lambda: fake`), like the original's `__mocks__`.
They are `async def` on purpose: FastAPI runs a plain `def` dependency in a thread
pool, a hop per dependency per request (measured: ~5% of the tickets service's time).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from pymongo.asynchronous.database import AsyncDatabase

from common.outbox import Outbox
from common.settings import ProcessSettings


async def get_settings(request: Request) -> ProcessSettings:
    """The service's own settings; a service types it as its class:
    `OrdersSettingsDep = Annotated[OrdersSettings, Depends(get_settings)]`."""
    return request.app.state.settings


async def get_db(request: Request) -> AsyncDatabase[dict[str, Any]]:
    return request.app.state.db


async def get_outbox(request: Request) -> Outbox:
    return request.app.state.outbox


DbDep = Annotated[AsyncDatabase[dict[str, Any]], Depends(get_db)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]
