"""Error hierarchy and the FastAPI handlers that render every error in one shape.

Every error response body is `{"errors": [{"message": str, "field": str?}]}` — the
contract of the original app — whatever raised it: our own errors, request validation,
unknown routes, a database outage, or a bug (500 "Something went wrong", never a trace).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class CustomError(Exception):
    """Base of the errors a handler may raise on purpose; renders as `status_code`."""

    status_code: int = 400
    default_message: str = "Bad request"

    def __init__(
        self,
        message: str | None = None,
        field: str | None = None,
        *,
        retry_after: int | None = None,  # seconds: sent as `Retry-After` (429, 503)
    ) -> None:
        self.message = message or self.default_message
        self.field = field
        self.retry_after = retry_after
        super().__init__(self.message)

    def serialize(self) -> list[dict[str, str]]:
        return [error_item(self.message, self.field)]


class BadRequestError(CustomError):
    status_code = 400


class NotAuthorizedError(CustomError):
    status_code = 401
    default_message = "Not authorized"


class PaymentRequiredError(CustomError):
    """The payment was refused (a declined card); the message is the provider's."""

    status_code = 402
    default_message = "Payment refused"


class ForbiddenError(CustomError):
    status_code = 403
    default_message = "Forbidden"


class NotFoundError(CustomError):
    status_code = 404
    default_message = "Not Found"


class ConflictError(CustomError):
    status_code = 409
    default_message = "The resource was changed by another request; reload and try again"


class PayloadTooLargeError(CustomError):
    status_code = 413
    default_message = "Request body is too large"


class UnsupportedMediaTypeError(CustomError):
    status_code = 415
    default_message = "Content-Type must be application/json"


class TooManyRequestsError(CustomError):
    status_code = 429
    default_message = "Too many requests; try again later"


class BadGatewayError(CustomError):
    """An upstream (the payment provider) failed."""

    status_code = 502
    default_message = "An upstream service failed; retry shortly"


class ServiceUnavailableError(CustomError):
    status_code = 503
    default_message = "Service unavailable, please retry shortly"


class BusyError(ServiceUnavailableError):
    """Too much work in flight (e.g. password hashing at its memory budget)."""

    default_message = "Busy, retry shortly"


class ErrorItem(BaseModel):
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The one error body of every service (for the OpenAPI docs)."""

    errors: list[ErrorItem]


_STATUS_DESCRIPTIONS = {
    400: "Invalid input (each error names its field) or a rule was broken",
    401: "Not signed in",
    402: "The card was declined (the provider's message)",
    403: "Signed in, but not allowed",
    404: "Not found",
    409: "Changed by another request meanwhile",
    413: "Request body too large",
    429: "Too many attempts; try again later",
    502: "The payment provider failed; retry (no double charge)",
    503: "A dependency is unavailable or the service is busy; retry (see Retry-After)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: document its error statuses with the error shape."""
    return {
        code: {"model": ErrorResponse, "description": _STATUS_DESCRIPTIONS[code]}
        for code in statuses
    }


def error_item(message: str, field: str | None = None) -> dict[str, str]:
    return {"message": message} if field is None else {"message": message, "field": field}


def errors_response(status_code: int, errors: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse(status_code=status_code, content={"errors": errors})


def field_error(message: str) -> PydanticCustomError:
    """Raise from a pydantic validator to report `message` verbatim (no "Value error, ")."""
    return PydanticCustomError("invalid", message)


def is_text(value: object) -> bool:
    """No string in `value` holds a lone surrogate: JSON's `\\ud800` escapes can carry
    one, UTF-8 cannot encode it, so a hash, a serializer or the database would fail."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(is_text(k) and is_text(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(is_text(item) for item in value)
    return True


class RequestBody(BaseModel):
    """The base of every request body: required fields are declared without a default
    and reach their validators as None when absent (so they get the field's own
    message), unknown ones are ignored, and every field is valid text before its own
    validator runs: `Title must be valid text` (400)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _absent_as_none(cls, data: object) -> object:
        """A required field left out reaches its validator as None: required fields are
        declared without a default, and a missing one gets the field's own message
        ("TicketId must be provided"), not pydantic's "Field required"."""
        if not isinstance(data, dict):
            return data  # refused as a whole: "Request body must be a JSON object"
        required = (f.alias or name for name, f in cls.model_fields.items() if f.is_required())
        return {**{key: None for key in required if key not in data}, **data}

    @field_validator("*", mode="before")
    @classmethod
    def _valid_text(cls, value: object, info: ValidationInfo) -> object:
        if not is_text(value):
            name = str(info.field_name)  # always set for a field's validator
            field = cls.model_fields[name].alias or name
            raise field_error(f"{field[:1].upper()}{field[1:]} must be valid text")
        return value


# Errors about the body as a whole, in the API's own words (no field).
_BODY_ERRORS = {
    "json_invalid": "Request body must be valid JSON",
    "model_attributes_type": "Request body must be a JSON object",
    "dict_type": "Request body must be a JSON object",
}


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """Map FastAPI/pydantic validation errors to `[{message, field}]`."""
    items: list[dict[str, str]] = []
    for err in exc.errors():
        kind = err.get("type", "")
        if kind in _BODY_ERRORS:
            items.append(error_item(_BODY_ERRORS[kind]))
            continue
        # loc is e.g. ("body", "email") or ("query", "limit"); the first part is the source.
        field = ".".join(part for part in err.get("loc", ())[1:] if isinstance(part, str)) or None
        if kind == "missing":
            message = f"{field.capitalize()} is required" if field else "Request body is required"
        else:
            message = str(err.get("msg", "Invalid value")).removeprefix("Value error, ")
        items.append(error_item(message, field))
    return items or [error_item("Invalid request")]


def request_id_of(request: Request) -> str:
    return getattr(request.state, "request_id", "-")


async def _custom_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CustomError)
    response = errors_response(exc.status_code, exc.serialize())
    if exc.retry_after is not None:
        response.headers["retry-after"] = str(max(1, exc.retry_after))
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return errors_response(400, validation_errors(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request failed"
    response = errors_response(exc.status_code, [error_item(message)])
    response.headers.update(dict(exc.headers or {}))  # e.g. Allow on a 405
    return response


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable (request %s): %r", request_id_of(request), exc)
    return errors_response(503, [error_item(ServiceUnavailableError.default_message)])


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error (request %s)", request_id_of(request), exc_info=exc)
    return errors_response(500, [error_item("Something went wrong")])


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CustomError, _custom_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for exc_type in (ConnectionFailure, ExecutionTimeout, WTimeoutError):
        app.add_exception_handler(exc_type, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected_error)
