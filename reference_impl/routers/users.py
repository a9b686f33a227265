"""Protected operations: ``GET /users/me`` (scope ``me``) and ``GET /protected-resource`` (``items:read``), RFC 6750."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..dependencies import get_current_user
from ..scopes import ITEMS_READ, ME

router = APIRouter(tags=["users"])

PRIVATE = {"Cache-Control": "private, no-store"}


# The user is resolved by calling get_current_user directly rather than through Depends(): the
# contract is hand-written (no schema is generated from these signatures), and the call skips
# FastAPI's dependency resolution on the hottest path.


@router.get("/users/me", response_model=None)
async def read_users_me(request: Request) -> JSONResponse:
    user = await get_current_user(request, ME)
    return JSONResponse(user.public_dict(), headers=PRIVATE)


@router.get("/protected-resource", response_model=None)
async def read_protected_resource(request: Request) -> JSONResponse:
    user = await get_current_user(request, ITEMS_READ)
    body = {"message": "This is a protected resource", "user": {"username": user.username}}
    return JSONResponse(body, headers=PRIVATE)
