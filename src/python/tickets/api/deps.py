"""Dependencies of the tickets routes (overridable in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ticketing_common.outbox import OutboxRelay


async def get_relay(request: Request) -> OutboxRelay:
    return request.app.state.relay


RelayDep = Annotated[OutboxRelay, Depends(get_relay)]
