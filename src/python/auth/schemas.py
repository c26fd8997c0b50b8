"""Request and response bodies. Every invalid input maps to the original app's message."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, BeforeValidator

from common.auth import CurrentUser
from common.errors import RequestBody, field_error

PASSWORD_MIN, PASSWORD_MAX = 4, 20
EMAIL_MAX = 254  # RFC 5321 path limit


def normalise_email(value: object) -> str:
    """Trimmed, lower-cased, syntactically valid email; anything else (wrong type, an
    operator object like {"$gt": ""}) is "Email must be valid"."""
    if not isinstance(value, str) or len(value) > EMAIL_MAX * 2:
        raise field_error("Email must be valid")
    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise field_error("Email must be valid") from None
    return checked.normalized.lower()


def new_password(value: object) -> str:
    if not isinstance(value, str) or not PASSWORD_MIN <= len(value.strip()) <= PASSWORD_MAX:
        raise field_error(f"Password must be between {PASSWORD_MIN} and {PASSWORD_MAX} characters")
    return value.strip()  # the original trims before storing


def supplied_password(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise field_error("You must supply a password")
    return value.strip()


class SignupRequest(RequestBody):
    email: Annotated[str, BeforeValidator(normalise_email)]
    password: Annotated[str, BeforeValidator(new_password)]


class SigninRequest(RequestBody):
    email: Annotated[str, BeforeValidator(normalise_email)]
    password: Annotated[str, BeforeValidator(supplied_password)]


class UserOut(BaseModel):
    id: str
    email: str


class CurrentUserOut(BaseModel):
    currentUser: CurrentUser | None
