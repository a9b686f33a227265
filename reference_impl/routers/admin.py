"""Managing users, with the ``admin`` scope: ``GET /users`` and ``POST /users``.

Every refusal of a body is a 400 with a ``detail`` (never FastAPI's 422): the body is read and
validated here, against ``UserCreate``, after the access token (401 / 403 come first).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from ..dependencies import get_current_user, get_state
from ..errors import DuplicateUserError, UserStoreError
from ..forms import BodyTooLargeError, read_body
from ..models import UserCreate, UserInDB
from ..scopes import ADMIN
from .users import PRIVATE

router = APIRouter(tags=["admin"])

JSON_TYPE = "application/json"
# A UserCreate at every limit with each character \u-escaped is about 25 KB: room for that, not more.
MAX_USER_BODY_BYTES = 65_536


class _BadBody(Exception):
    """The body is not a UserCreate; the message says why."""


def _refusal(detail: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _validation_detail(exc: ValidationError) -> str:
    error = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    if error["type"] == "json_invalid":
        return "The body is not valid JSON"
    where = ".".join(str(part) for part in error["loc"])
    return f"Invalid body{' at ' + where if where else ''}: {error['msg']}"


async def _user_create(request: Request) -> UserCreate:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != JSON_TYPE:
        raise _BadBody(f"Send the body as {JSON_TYPE}")
    try:
        body = await read_body(request, MAX_USER_BODY_BYTES)
    except BodyTooLargeError:
        raise _BadBody("The request body is too large") from None
    try:
        return UserCreate.model_validate_json(body)
    except ValidationError as exc:
        raise _BadBody(_validation_detail(exc)) from None


# One route for both methods, so that a 405 on /users lists them both in Allow.
@router.api_route("/users", methods=["GET", "POST"], response_model=None)
async def users_collection(request: Request) -> JSONResponse:
    await get_current_user(request, ADMIN)
    if request.method == "GET":
        return await list_users(request)
    return await create_user(request)


async def list_users(request: Request) -> JSONResponse:
    state = get_state(request)
    users = await state.db(state.store.list)  # by username
    return JSONResponse([user.public_dict() for user in users], headers=PRIVATE)


async def create_user(request: Request) -> JSONResponse:
    state = get_state(request)
    try:
        new = await _user_create(request)
    except _BadBody as exc:
        return _refusal(str(exc))
    exists = f"A user named {new.username!r} exists"
    if await state.db(state.store.get, new.username) is not None:  # before hashing: a taken name costs no hash
        return _refusal(exists, status=409)
    hashed = await state.passwords.hash_off_loop(new.password)
    user = UserInDB(
        username=new.username,
        email=new.email,
        full_name=new.full_name,
        hashed_password=hashed,
        disabled=False,
        scopes=new.scopes,
    )
    try:
        await state.write(state.store.add, user)
    except DuplicateUserError:  # added meanwhile, while the password was being hashed
        return _refusal(exists, status=409)
    except UserStoreError as exc:  # a value the database cannot hold (PostgreSQL: the character NUL)
        return _refusal(str(exc))
    return JSONResponse(user.public_dict(), status_code=201, headers=PRIVATE)
