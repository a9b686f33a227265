"""What the fuzzer sends beyond the contract's own data: malformed bearer tokens and the real login.

Two schemathesis ``flatmap_case`` hooks, drawn by Hypothesis (so a seed replays them and failures shrink):

- on every operation that declares security, a case may carry, instead of the issued token, one that
  the server never issued: random ``b64token`` text, three random segments, the real header and
  claims under another signature, with the signature stripped, or with ``alg: none``;
- on the token endpoint, a positive case may carry the real username and password, so that the
  endpoint is fuzzed with valid credentials as well as invalid ones.

Hypothesis shrinks towards the first alternative, the case as generated: a failure that does not
need the change is reported without it.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from requests.structures import CaseInsensitiveDict

from ..config import Credentials
from ..contract import security_of
from .tokens import TokenSet

SEGMENT = st.from_regex(r"[A-Za-z0-9_-]{1,48}", fullmatch=True)
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
B64TOKEN_SYNTAX = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
B64TOKEN = st.from_regex(r"[A-Za-z0-9\-._~+/]{1,120}=*", fullmatch=True)
NONE_HEADER = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "at+jwt"}).encode()).rstrip(b"=").decode()


def unissued_tokens(issued: str) -> st.SearchStrategy[str]:
    """Tokens derived from (or unlike) ``issued`` that no server may accept.

    Each is a well-formed ``b64token``, so the contract's answer is 401 ``invalid_token``, never the
    400 ``invalid_request`` of a malformed header: the case stays valid data for schemathesis.
    """
    parts = issued.split(".")
    header, claims = (parts[0], parts[1]) if len(parts) == 3 else (issued, issued)
    signature = parts[-1]
    variants = [f"{header}.{claims}.", f"{header}.{claims}", f"{NONE_HEADER}.{claims}.", f"{issued}.{issued}"]
    return st.one_of(
        B64TOKEN,
        st.tuples(SEGMENT, SEGMENT, SEGMENT).map(".".join),
        SEGMENT.filter(lambda s: s != signature).map(lambda s: f"{header}.{claims}.{s}"),
        st.sampled_from(variants),
    ).filter(lambda token: token != issued and B64TOKEN_SYNTAX.fullmatch(token) is not None)


def bearer_value(headers: Any) -> str | None:
    """The token of an ``Authorization: Bearer`` header in ``headers``, if there is one."""
    if not headers:
        return None
    for name, value in headers.items():
        if str(name).lower() == "authorization" and isinstance(value, str) and value[:7].lower() == "bearer ":
            return value[7:]
    return None


def _is_password_grant(case: Any) -> bool:
    """A positive case of the password grant (not of the refresh grant, not negative data)."""
    meta = case.meta
    positive = meta is None or not meta.generation.mode.is_negative
    return positive and isinstance(case.body, dict) and case.body.get("grant_type") == "password"


def declares_security(operation: Any) -> bool:
    """Whether the contract asks for credentials on the schemathesis ``operation``."""
    return bool(security_of(operation.schema.raw_schema, operation.definition.raw))


@dataclass(frozen=True)
class FuzzTarget:
    """What the hooks need to know of the target: the login and the token path."""

    credentials: Credentials | None  # None: the token endpoint is fuzzed with generated credentials only
    token_path: str = "/token"
    injected: TokenSet = field(default_factory=TokenSet)  # the unissued tokens put into requests

    def is_token_endpoint(self, operation: Any) -> bool:
        return str(operation.method).upper() == "POST" and operation.path == self.token_path


def flatmap_case_hook(target: FuzzTarget) -> Callable[[Any, Any], st.SearchStrategy[Any]]:
    """The ``flatmap_case`` hook for ``target``; register it on a schema or globally."""

    def flatmap_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
        operation = context.operation
        case = without_framing_headers(case)
        if operation is None:
            return st.just(case)
        if declares_security(operation):
            token = bearer_value(case.headers)
            if token is None:
                return st.just(case)  # no credentials to replace (a case that tests their absence)
            return st.one_of(st.just(case), unissued_tokens(token).map(lambda bad: _with_token(case, bad, target)))
        credentials = target.credentials
        if credentials and target.is_token_endpoint(operation) and _is_password_grant(case):
            return st.one_of(st.just(case), st.just(credentials).map(lambda login: _with_login(case, login)))
        return st.just(case)

    return flatmap_case


# RFC 9112 message framing and hop-by-hop fields: the HTTP layer answers a bad one (400 from the
# server's parser, RFC 9112 §6.3) before the API sees the request, so they say nothing about the
# contract. The generator may invent them as extra headers; they are taken out.
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "host", "connection", "keep-alive", "te", "trailer", "upgrade", "expect"}
)


def without_framing_headers(case: Any) -> Any:
    """``case`` without generated framing headers (the same object when it has none)."""
    headers = case.headers or {}
    if not any(str(name).lower() in FRAMING_HEADERS for name in headers):
        return case
    kept = CaseInsensitiveDict({k: v for k, v in headers.items() if str(k).lower() not in FRAMING_HEADERS})
    return case.derive(headers=kept, keep_auth=True)


def map_case(context: Any, case: Any) -> Any:
    """The ``map_case`` hook (every phase, the coverage phase included): no generated framing headers."""
    return without_framing_headers(case)


def _with_token(case: Any, token: str, target: FuzzTarget) -> Any:
    target.injected.add(token)
    headers = CaseInsensitiveDict(case.headers)
    headers["Authorization"] = f"Bearer {token}"
    return case.derive(headers=headers, keep_auth=True)


def _with_login(case: Any, credentials: Credentials) -> Any:
    derived = case.derive(keep_auth=True)
    derived.body = {**case.body, "username": credentials.username, "password": credentials.password}
    return derived
