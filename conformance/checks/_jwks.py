"""Finding the target's JWK Set: the configured URL, or the first common path that serves one."""

from __future__ import annotations

from typing import Any

from ..client import TransportError
from ..context import Context
from ..model import Skip

# Where servers publish their keys (the jwks_uri of an OpenID configuration is followed too).
COMMON_PATHS = ("/.well-known/jwks.json", "/jwks.json", "/.well-known/jwks", "/oauth/jwks", "/api/jwks", "/keys")
OPENID_CONFIGURATION = "/.well-known/openid-configuration"
HOW_TO = "pass --jwks-url (or keys.jwks_url in the config file) if the server publishes its keys elsewhere"


def _key_set(ctx: Context, url: str) -> dict[str, Any] | None:
    try:
        response = ctx.get(url)
    except TransportError:
        return None
    body = response.json()
    if response.status == 200 and isinstance(body, dict) and isinstance(body.get("keys"), list):
        return body
    return None


def _discover(ctx: Context) -> tuple[str, dict[str, Any]] | None:
    configured = ctx.config.keys.jwks_url
    if configured:
        found = _key_set(ctx, configured)
        if found is None:
            raise Skip(f"--jwks-url {configured} did not answer with a JWK Set")
        return configured, found
    try:
        openid = ctx.get(OPENID_CONFIGURATION).json()
    except TransportError:
        openid = None
    candidates = list(COMMON_PATHS)
    if isinstance(openid, dict) and isinstance(openid.get("jwks_uri"), str):
        candidates.insert(0, openid["jwks_uri"])
    for url in candidates:
        found = _key_set(ctx, url)
        if found is not None:
            return url, found
    return None


def verification_keys(ctx: Context) -> tuple[str, list[dict[str, Any]]]:
    """(where, keys) the target verifies tokens with: the test issuer's JWK Set in issuer mode, else its own."""
    issuer = ctx.state.issuer
    if issuer is not None:
        return f"the test issuer's JWK Set ({issuer.mode.endpoint})", issuer.public_jwks()["keys"]
    return published_keys(ctx)


def published_keys(ctx: Context) -> tuple[str, list[dict[str, Any]]]:
    """(url, keys) of the target's JWK Set, discovered once per run; ``Skip`` if there is none."""
    state = ctx.state
    with state.jwks_lock:
        if not state.jwks_searched:
            state.jwks = _discover(ctx)
            state.jwks_searched = True
        found = state.jwks
    if found is None:
        raise Skip(f"no JWK Set found at {', '.join(COMMON_PATHS)}: {HOW_TO}")
    url, document = found
    return url, [key for key in document["keys"] if isinstance(key, dict)]
