"""Dependencies of the auth routes (overridable in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from auth.core.config import AuthSettings
from auth.core.passwords import Passwords
from common.context import context_of, own_of
from common.deps import data_context, get_settings
from common.revocations import RevokedSessions


async def get_passwords(request: Request) -> Passwords:
    return own_of(context_of(request), Passwords)


def revoked_sessions(request: Request) -> RevokedSessions:
    """The sign-outs this process follows (from start-up on)."""
    return data_context(request).revoked_sessions


async def get_client_address(request: Request) -> str:
    """Who is calling, for per-address limits: the entry `TRUSTED_PROXY_HOPS` from the
    right of X-Forwarded-For (the part our own proxies wrote; anything to its left the
    client could have forged), else the connection's peer."""
    settings = context_of(request).settings
    assert isinstance(settings, AuthSettings)
    hops = settings.trusted_proxy_hops
    forwarded = [
        hop.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for hop in header.split(",")
    ]
    if hops and len(forwarded) >= hops:
        return forwarded[-hops][:64]
    return request.client.host if request.client else "unknown"


AuthSettingsDep = Annotated[AuthSettings, Depends(get_settings)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
ClientAddressDep = Annotated[str, Depends(get_client_address)]
