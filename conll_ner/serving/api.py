"""The API's request and response bodies (which the OpenAPI description at
/openapi.json is generated from), and reading a request: the body within its
byte limit, UTF-8, JSON, the right shape, within the texts and characters
limits. Every bad request is answered with an `ApiError`: a status and JSON
that says what was wrong and, over a limit, names it."""

import json
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from ..inference.corpus import SURROGATE
from .settings import ServeSettings


class EntsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    texts: List[str] = Field(
        ...,
        min_length=1,
        description="The texts to annotate; an empty or whitespace-only text has no entities",
        examples=[["Peter Blackburn met EU officials in Brussels."]],
    )


class Entity(BaseModel):
    start_char: int = Field(..., description="Offset of the entity's first character in its text")
    end_char: int = Field(..., description="Offset after its last character")
    label: str
    text: str


class TextEntities(BaseModel):
    entities: List[Entity] = Field(..., description="In order of their offsets")


class PipelineInfo(BaseModel):
    name: str = Field(..., description="The pipeline's package name (lang_name)")
    version: str
    precision: str = Field(..., description="What the transformer predicts in: int8, bfloat16 or fp32 on a CPU")
    device: str = Field(..., description="cpu or gpu")


class EntsResponse(BaseModel):
    pipeline: PipelineInfo
    results: List[TextEntities] = Field(..., description="One per text, in the order of the request's texts")


class RenderResponse(BaseModel):
    pipeline: PipelineInfo
    html: str = Field(..., description="displaCy's markup of the texts' entities")


class ErrorResponse(BaseModel):
    error: str
    limit: Optional[str] = Field(None, description="The setting whose limit the request is over")
    max: Optional[int] = Field(None, description="That limit")


class ApiError(Exception):
    def __init__(self, status: int, error: str, limit: Optional[str] = None, maximum: Optional[int] = None) -> None:
        super().__init__(error)
        self.status = status
        self.body: Dict[str, Any] = {"error": error, "limit": limit, "max": maximum}


def over_limit(limit: str, maximum: int, what: str) -> ApiError:
    return ApiError(413, f"{what} is over the limit of {maximum:,} ({limit})", limit, maximum)


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The body, refused as soon as it is longer than `max_bytes`: by its
    Content-Length, or while it streams in (a chunked body has none)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise over_limit("max_request_bytes", max_bytes, f"the body of {int(declared):,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise over_limit("max_request_bytes", max_bytes, "the body")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_texts(body: bytes, settings: ServeSettings) -> List[str]:
    """The texts of a request body, or the ApiError that answers it."""
    try:
        decoded = body.decode("utf8")
    except UnicodeDecodeError as err:
        raise ApiError(400, f"the body is not UTF-8: {err}") from err
    try:
        data = json.loads(decoded)
    except json.JSONDecodeError as err:
        raise ApiError(400, f'the body is not JSON ({err}): send {{"texts": ["..."]}}') from err
    try:
        texts = EntsRequest.model_validate(data).texts
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'the body'}: {error['msg']}" for error in err.errors()
        )
        raise ApiError(422, f'{problems} (send {{"texts": ["..."]}}, one or more strings)') from err
    if len(texts) > settings.max_texts:
        raise over_limit("max_texts", settings.max_texts, f"a request of {len(texts):,} texts")
    for index, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            raise over_limit("max_text_chars", settings.max_text_chars, f"text {index} of {len(text):,} characters")
        if SURROGATE.search(text):
            raise ApiError(422, f"text {index} holds an unpaired surrogate escape, which is not Unicode text")
    return texts
