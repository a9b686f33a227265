"""``GET /health``: a readiness probe that needs no authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..dependencies import get_state

router = APIRouter(tags=["ops"])


@router.get("/health", response_model=None)
async def read_health(request: Request) -> JSONResponse:
    get_state(request).store.ping()
    return JSONResponse({"status": "ok"})
