"""Protected operations: ``GET /users/me`` and ``GET /protected-resource`` (RFC 6750)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..dependencies import CurrentUser

router = APIRouter(tags=["users"])

PRIVATE = {"Cache-Control": "private, no-store"}


@router.get("/users/me", response_model=None)
async def read_users_me(current_user: CurrentUser) -> JSONResponse:
    return JSONResponse(current_user.model_dump(), headers=PRIVATE)


@router.get("/protected-resource", response_model=None)
async def read_protected_resource(current_user: CurrentUser) -> JSONResponse:
    body = {"message": "This is a protected resource", "user": {"username": current_user.username}}
    return JSONResponse(body, headers=PRIVATE)
