"""Unauthenticated operational endpoints: ``GET /health`` and ``GET /.well-known/jwks.json``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..dependencies import get_state

router = APIRouter(tags=["ops"])


@router.get("/.well-known/jwks.json", response_model=None)
async def read_jwks(request: Request) -> JSONResponse:
    """The public keys that verify this server's tokens (none for an HMAC-signing server)."""
    key_set = get_state(request).key_set
    body = key_set.jwks() if key_set is not None else {"keys": []}
    return JSONResponse(body, headers={"Cache-Control": "public, max-age=300"})


@router.get("/health", response_model=None)
async def read_health(request: Request) -> JSONResponse:
    state = get_state(request)
    await state.db(state.store.ping)
    return JSONResponse({"status": "ok"})
