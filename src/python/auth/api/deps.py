"""Dependencies of the auth routes (overridable in tests)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from auth.core.config import AuthSettings
from auth.core.passwords import Passwords
from common.deps import get_settings


async def get_passwords(request: Request) -> Passwords:
    return request.app.state.passwords


AuthSettingsDep = Annotated[AuthSettings, Depends(get_settings)]
PasswordsDep = Annotated[Passwords, Depends(get_passwords)]
