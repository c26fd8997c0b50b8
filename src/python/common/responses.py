"""`ModelResponse`: a route's pydantic model as JSON, serialized once."""

from __future__ import annotations

from fastapi.responses import Response
from pydantic import BaseModel


class ModelResponse(Response):
    """`model` as JSON (pydantic's own serializer; `None` fields left out, as the
    original leaves them out). Routes return this rather than the model: FastAPI would
    dump the model, validate the dump against the route's `response_model` and dump it
    again — measured, ~70 µs of a read's ~650 µs of CPU in-process. The route's `response_model` still documents the body.
    """

    media_type = "application/json"

    def __init__(self, model: BaseModel, status_code: int = 200) -> None:
        super().__init__(model.model_dump_json(exclude_none=True), status_code)
