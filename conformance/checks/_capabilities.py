"""The target's capabilities (refresh tokens, revocation, scopes), discovered once per run."""

from __future__ import annotations

from ..capabilities import SERVED_CONTRACT_PATH, Capabilities, from_document, merged
from ..context import Context
from ..model import Skip

HOW_TO = {
    "refresh": (
        "refresh tokens: set capabilities.refresh_tokens: true in the config file, or serve an OpenAPI document "
        f"(--contract, or {SERVED_CONTRACT_PATH} on the target) whose token endpoint documents "
        "grant_type=refresh_token"
    ),
    "revocation": (
        "token revocation (RFC 7009): set capabilities.revocation: /revoke in the config file, or serve an "
        "OpenAPI document with a POST .../revoke operation"
    ),
    "scopes": (
        'scopes: set capabilities.scopes: {"GET /users": admin} in the config file, or serve an OpenAPI document '
        "whose operations name the scopes they need"
    ),
    "logout": "logout endpoint: set capabilities.logout: /logout in the config file",
}


def _discover(ctx: Context) -> Capabilities:
    """From the target's own contract; the kit's contract declares everything, so then from what it serves."""
    token_path = ctx.config.paths.token
    contract = ctx.state.contract
    if contract.describes_target and contract.document is not None:
        return from_document(contract.document, token_path, contract.source)
    served = contract.served_document()  # shared with the contract itself: fetched once per run
    if served is not None:
        return from_document(served, token_path, f"the target's {SERVED_CONTRACT_PATH}")
    return Capabilities()


def capabilities(ctx: Context) -> Capabilities:
    state = ctx.state
    with state.capabilities_lock:
        if state.capabilities is None:
            state.capabilities = merged(_discover(ctx), ctx.config.capabilities)
        found: Capabilities = state.capabilities
    return found


def require(ctx: Context, what: str) -> Capabilities:
    """The capabilities, or ``Skip`` naming how to declare ``what`` (refresh, revocation, scopes, logout)."""
    found = capabilities(ctx)
    present = {
        "refresh": found.refresh_tokens,
        "revocation": found.revocation_path is not None,
        "scopes": found.scopes,
        "logout": found.logout_path is not None,
    }[what]
    if not present:
        raise Skip(f"the target declares no {HOW_TO[what]} (looked at: {found.source})")
    return found


def endpoint(ctx: Context, what: str) -> str:
    """The path of the declared revocation or logout endpoint, or ``Skip`` naming how to declare it."""
    found = require(ctx, what)
    path = found.revocation_path if what == "revocation" else found.logout_path
    if path is None:
        raise Skip(f"the target declares no {HOW_TO[what]} (looked at: {found.source})")
    return path
