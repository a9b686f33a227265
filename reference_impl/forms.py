"""Request bodies: size-limited reading, and the form encoding of the OAuth endpoints (RFC 6749 §3.2),
shared by ``POST /token`` and ``POST /revoke`` (RFC 7009 §2.1)."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import parse_qsl

from fastapi import Request

from .oauth_errors import TokenEndpointError

FORM_TYPE = "application/x-www-form-urlencoded"
TOO_LARGE = "The request body is too large"


class BodyTooLargeError(Exception):
    """The request body is larger than the endpoint accepts (it was not read to its end)."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or ``BodyTooLargeError`` as soon as it (or its declared length) exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def check_content_type(value: str | None) -> None:
    media_type, *params = (value or "").split(";")
    if media_type.strip().lower() != FORM_TYPE:
        raise TokenEndpointError("invalid_request", f"Send the parameters as {FORM_TYPE}")
    for param in params:
        name, _, charset = param.strip().partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise TokenEndpointError("invalid_request", "The form must be encoded in UTF-8")


def parse_form(body: bytes, known: Collection[str]) -> dict[str, str]:
    """RFC 6749 §3.2: a parameter without a value counts as omitted, and none may be sent twice.

    Parameters not in ``known`` are ignored, as they MUST be.
    """
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise TokenEndpointError("invalid_request", "The form is not valid UTF-8 form encoding") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name not in known or value == "":
            continue  # unknown parameters MUST be ignored; empty ones count as omitted
        if name in form:
            raise TokenEndpointError("invalid_request", f"The parameter {name} is repeated")
        if "\x00" in value:
            raise TokenEndpointError("invalid_request", f"The parameter {name} contains a NUL character")
        form[name] = value
    return form


async def read_form(request: Request, limit: int, known: Collection[str]) -> dict[str, str]:
    """The known parameters of a form-encoded body; ``TokenEndpointError`` (400, or 413) when it is not one."""
    check_content_type(request.headers.get("content-type"))
    try:
        body = await read_body(request, limit)
    except BodyTooLargeError:
        raise TokenEndpointError("invalid_request", TOO_LARGE, status=413) from None
    return parse_form(body, known)
