"""Broken twins for the refresh, revocation and scope checks: the reference app behind a wrapper.

Each wrapper reads the form a client sent (``FormWrapper``) and may answer for the app, forward a
changed request, or edit the app's answer, so that exactly one rule breaks.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from reference_impl.scopes import KNOWN_SCOPES

from .harness import PRIMARY, Answer, ASGIApp, answer, rewrite
from .token_twins import unverified

Scope = dict[str, Any]
Form = dict[str, str]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _read(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def forward(
    app: ASGIApp, scope: Scope, form: Form, send: Send, edit: Callable[[Answer], None] | None = None
) -> None:
    """Send ``form`` to ``app`` as the request body; ``edit`` may change the answer."""
    inner = rewrite(app, lambda _, found: edit(found)) if edit is not None else app
    body = urlencode(form).encode()
    headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
    await inner({**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}, _replay(body), send)


FormHandler = Callable[[Scope, Form, Send], Awaitable[None]]


def on_form(app: ASGIApp, path: str, handler: FormHandler) -> ASGIApp:
    """For ``POST path``, ``handler(scope, form, send)`` answers (itself, or with ``forward``)."""

    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != path:
            await app(scope, receive, send)
            return
        form = dict(parse_qsl((await _read(receive)).decode("utf-8", "replace"), keep_blank_values=True))
        await handler(scope, form, send)

    return wrapper


class TokenLog:
    """The refresh tokens the app issued, in order, with the access token issued beside each."""

    def __init__(self) -> None:
        self.access_for: dict[str, str] = {}  # refresh token -> the access token of the same answer
        self.successor: dict[str, str] = {}  # refresh token -> the one issued when it was used

    def record(self, used: str | None) -> Callable[[Answer], None]:
        def edit(found: Answer) -> None:
            if found.status == 200:
                body = found.json()
                refresh, access = body.get("refresh_token"), body.get("access_token")
                if refresh and access:
                    self.access_for[refresh] = access
                    if used:
                        self.successor[used] = refresh

        return edit

    def newest(self, token: str) -> str:
        while token in self.successor:
            token = self.successor[token]
        return token


def _logged(app: ASGIApp, log: TokenLog, swap: Callable[[Form], Form]) -> ASGIApp:
    """The token endpoint, its answers logged, each form changed by ``swap`` first."""

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        used = form.get("refresh_token") if form.get("grant_type") == "refresh_token" else None
        await forward(app, scope, swap(form), send, log.record(used))

    return on_form(app, "/token", handle)


def reusable_refresh_tokens(app: ASGIApp) -> ASGIApp:
    """A used refresh token keeps working: it is swapped for the newest of its chain (REFRESH-004)."""
    log = TokenLog()

    def swap(form: Form) -> Form:
        if form.get("grant_type") == "refresh_token" and form.get("refresh_token") in log.successor:
            return {**form, "refresh_token": log.newest(form["refresh_token"])}
        return form

    return _logged(app, log, swap)


def any_refresh_token_will_do(app: ASGIApp) -> ASGIApp:
    """An unknown refresh token is taken for the newest one issued (REFRESH-002)."""
    log = TokenLog()

    def swap(form: Form) -> Form:
        token = form.get("refresh_token")
        if form.get("grant_type") == "refresh_token" and token not in log.access_for and log.access_for:
            live = [t for t in log.access_for if t not in log.successor]
            return {**form, "refresh_token": live[-1]} if live else form
        return form

    return _logged(app, log, swap)


def refresh_token_as_access_token(app: ASGIApp) -> ASGIApp:
    """A refresh token sent as a bearer token is taken for its access token (REFRESH-003)."""
    log = TokenLog()
    logged = _logged(app, log, lambda form: form)

    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = []
            for name, value in scope["headers"]:
                token = value[7:].decode("latin-1") if name == b"authorization" else ""
                if token in log.access_for:
                    value = b"Bearer " + log.access_for[token].encode()
                headers.append((name, value))
            scope = {**scope, "headers": headers}
        await logged(scope, receive, send)

    return wrapper


def cacheable_refresh_answers(app: ASGIApp) -> ASGIApp:
    """The refresh grant's answer lacks Cache-Control: no-store (REFRESH-001); the password grant's has it."""

    def drop(found: Answer) -> None:
        found.set_header("cache-control", None)

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        await forward(app, scope, form, send, drop if form.get("grant_type") == "refresh_token" else None)

    return on_form(app, "/token", handle)


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def ignores_revocation(app: ASGIApp) -> ASGIApp:
    """``POST /revoke`` answers 200 and does nothing (REVOKE-004, REVOKE-001)."""

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        await answer(send, 200, headers=NO_STORE)

    return on_form(app, "/revoke", handle)


def revoke_errors_on_unknown_tokens(app: ASGIApp) -> ASGIApp:
    """An unknown token gets 400 invalid_request instead of 200 (REVOKE-002)."""
    known: set[str] = set()

    def remember(scope: Scope, found: Answer) -> None:
        if scope["path"] == "/token" and found.status == 200:
            body = found.json()
            known.update(t for t in (body.get("access_token"), body.get("refresh_token")) if t)

    inner = rewrite(app, remember)

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        if form.get("token") not in known:
            await answer(send, 400, {"error": "invalid_request", "error_description": "Unknown token"}, NO_STORE)
        else:
            await forward(inner, scope, form, send)

    return on_form(inner, "/revoke", handle)


def hint_stops_the_search(app: ASGIApp) -> ASGIApp:
    """A refresh token revoked with token_type_hint=access_token is not found (REVOKE-003)."""

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        if form.get("token_type_hint") == "access_token" and form.get("token", "").count(".") != 2:
            await answer(send, 200, headers=NO_STORE)  # "not an access token": looked no further
        else:
            await forward(app, scope, form, send)

    return on_form(app, "/revoke", handle)


def unknown_scope_silently_dropped(app: ASGIApp) -> ASGIApp:
    """An unknown scope is dropped from the request, and the answer does not say what was granted (TOKEN-022)."""

    def hide(found: Answer) -> None:
        if found.status == 200:
            body = found.json()
            body.pop("scope", None)
            found.set_json(body)

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        if "scope" not in form:
            await forward(app, scope, form, send)
        else:
            await forward(app, scope, {k: v for k, v in form.items() if k != "scope"}, send, hide)

    return on_form(app, "/token", handle)


def _insufficient(found: Answer) -> bool:
    return found.status == 403 and "insufficient_scope" in (found.header("www-authenticate") or "")


def scope_not_enforced(app: ASGIApp) -> ASGIApp:
    """An operation is served to a token without its scope (PROT-004 fails)."""

    def serve(scope: Scope, found: Answer) -> None:
        if _insufficient(found):
            found.set_header("www-authenticate", None)
            found.set_json([] if scope["path"] == "/users" else {"username": "served anyway"}, status=200)

    return rewrite(app, serve)


def insufficient_scope_not_said(app: ASGIApp) -> ASGIApp:
    """A token without the scope gets 403 with a bare challenge (PROT-004 warns)."""

    def bare(scope: Scope, found: Answer) -> None:
        if _insufficient(found):
            found.set_header("www-authenticate", 'Bearer realm="jwt-reference"')
            found.set_json({"detail": "Forbidden"})

    return rewrite(app, bare)


def with_logout(app: ASGIApp, *, revokes: bool) -> ASGIApp:
    """A ``POST /logout`` beside the app's own paths: it revokes the bearer token, or does nothing."""

    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/logout":
            await app(scope, receive, send)
            return
        bearer = dict(scope["headers"]).get(b"authorization", b"")[7:].decode("latin-1")
        if revokes:
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
            headers.append((b"content-type", b"application/x-www-form-urlencoded"))
            revoke = {**scope, "path": "/revoke", "raw_path": b"/revoke", "headers": headers}
            await forward(app, revoke, {"token": bearer}, send)  # 200, as a logout's answer
        else:
            await answer(send, 204)

    return wrapper


def grants_any_scope_asked_for(app: Any, *, says_so: bool = True) -> ASGIApp:
    """Any scope the server defines is granted to whoever asks for it, held or not (TOKEN-024), as FastAPI's
    scopes tutorial does: the password is checked, the scope asked for is not. The token's claim names
    the scopes; the answer's ``scope`` does too unless ``says_so`` is false."""
    tokens = app.state.reference.tokens

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        asked = form.get("scope", "").split()
        if form.get("grant_type") != "password" or not asked or not set(asked) <= set(KNOWN_SCOPES):
            await forward(app, scope, form, send)
            return

        def grant(found: Answer) -> None:
            if found.status == 200:
                body = found.json()
                claims = unverified(body["access_token"]) or {}
                body["access_token"] = tokens.issue(claims["sub"], scope=" ".join(asked), sid=claims["sid"]).token
                body["scope"] = " ".join(asked)
                if not says_so:
                    del body["scope"]
                found.set_json(body)

        await forward(app, scope, {k: v for k, v in form.items() if k != "scope"}, send, grant)

    return on_form(app, "/token", handle)


def scope_never_said(app: ASGIApp) -> ASGIApp:
    """No token answer has a ``scope`` member; the tokens' claims still name it."""

    def hide(scope: Scope, found: Answer) -> None:
        if scope["path"] == "/token" and found.status == 200:
            found.set_json({k: v for k, v in found.json().items() if k != "scope"})

    return rewrite(app, hide)


def admin_asked_for_gets_the_default_grant(app: ASGIApp) -> ASGIApp:
    """A login asking for admin gets the default grant, and its answer's scope says so (TOKEN-024 passes)."""

    async def handle(scope: Scope, form: Form, send: Send) -> None:
        if "admin" in form.get("scope", "").split():
            form = {k: v for k, v in form.items() if k != "scope"}
        await forward(app, scope, form, send)

    return on_form(app, "/token", handle)


def opaque_token_server(*, escalates: bool) -> ASGIApp:
    """A server of its own with opaque tokens whose scope nothing says (not the answer, not the token).

    The primary user logs in; ``GET /users/me`` needs ``me``, which the default grant holds; ``GET /users``
    needs ``admin``, which it lacks. Asking for ``admin`` gets a token that reaches ``GET /users``
    (``escalates``: TOKEN-024 fails), or one refused there with 403 (TOKEN-024 passes).
    """
    issued: dict[str, set[str]] = {}
    challenge = {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="admin"'}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        method, path = scope["method"], scope["path"]
        if (method, path) == ("POST", "/token"):
            form = dict(parse_qsl((await _read(receive)).decode("utf-8", "replace"), keep_blank_values=True))
            if (form.get("username"), form.get("password")) != (PRIMARY.username, PRIMARY.password):
                await answer(send, 400, {"error": "invalid_grant"}, NO_STORE)
                return
            token = secrets.token_urlsafe(24)
            asked_admin = "admin" in form.get("scope", "").split()
            issued[token] = {"me", "admin"} if asked_admin and escalates else {"me"}
            await answer(send, 200, {"access_token": token, "token_type": "bearer", "expires_in": 900}, NO_STORE)
            return
        bearer = dict(scope["headers"]).get(b"authorization", b"")[7:].decode("latin-1")
        granted = issued.get(bearer)
        if method != "GET" or path not in ("/users/me", "/users"):
            await answer(send, 404, {"detail": "Not Found"})
        elif granted is None:
            await answer(send, 401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        elif path == "/users" and "admin" not in granted:
            await answer(send, 403, {"error": "insufficient_scope"}, challenge)
        else:
            await answer(send, 200, [] if path == "/users" else {"username": PRIMARY.username})

    return app
