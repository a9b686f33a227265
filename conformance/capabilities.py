"""What the target implements beyond the password grant: refresh tokens, revocation, scopes.

The checks of a capability run only when the target declares it: in the config file
(``capabilities``), or in its own OpenAPI document (``--contract PATH``, else the one it serves at
``/openapi.json``, as FastAPI apps do). The kit's contract is not evidence: it declares everything,
so a target that claims it (``--contract kit:VERSION``) is read from the document it serves.

- refresh tokens: the token endpoint's request body documents ``grant_type=refresh_token``, or an
  OAuth 2.0 password flow declares a ``refreshUrl``;
- revocation (RFC 7009): a ``POST`` operation whose path ends in ``/revoke``; logout: one ending
  in ``/logout``;
- scopes: operations whose security requirements name scopes (``bearerAuth: [admin]``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .contract import operations, resolve, security_of
from .target_contract import SERVED_CONTRACT_PATH as SERVED_CONTRACT_PATH


@dataclass(frozen=True)
class Capabilities:
    refresh_tokens: bool = False
    revocation_path: str | None = None
    logout_path: str | None = None
    # "METHOD /path" -> the scopes its security requirement names (any one requirement suffices)
    operation_scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    defined_scopes: tuple[str, ...] = ()  # every scope the target defines
    source: str = f"no config entry, no OpenAPI document at {SERVED_CONTRACT_PATH}"  # where they were read

    @property
    def scopes(self) -> bool:
        return bool(self.operation_scopes)


@dataclass(frozen=True)
class DeclaredCapabilities:
    """The config file's ``capabilities``: ``None`` leaves a capability to discovery."""

    refresh_tokens: bool | None = None
    revocation_path: str | None = None
    logout_path: str | None = None
    operation_scopes: Mapping[str, tuple[str, ...]] | None = None

    @property
    def anything(self) -> bool:
        return any(
            value is not None
            for value in (self.refresh_tokens, self.revocation_path, self.logout_path, self.operation_scopes)
        )


def _walk(document: Mapping[str, Any], node: Any, depth: int = 0) -> Iterator[Any]:
    """Every value below ``node``, ``$ref``s resolved (bounded: contracts may be recursive)."""
    if depth > 12:
        return
    node = resolve(document, node)
    yield node
    children = node.values() if isinstance(node, Mapping) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(document, child, depth + 1)


def _documents_refresh_grant(document: Mapping[str, Any], token_path: str) -> bool:
    operation = document.get("paths", {}).get(token_path, {}).get("post")
    if isinstance(operation, Mapping):
        for node in _walk(document, operation.get("requestBody", {})):
            if isinstance(node, Mapping) and (
                node.get("const") == "refresh_token" or "refresh_token" in (node.get("enum") or [])
            ):
                return True
    for node in _walk(document, document.get("components", {}).get("securitySchemes", {})):
        if (
            isinstance(node, Mapping)
            and isinstance(node.get("password"), Mapping)
            and node["password"].get("refreshUrl")
        ):
            return True
    return False


def _defined_scopes(document: Mapping[str, Any]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for node in _walk(document, document.get("components", {}).get("securitySchemes", {})):
        if isinstance(node, Mapping) and isinstance(node.get("scopes"), Mapping):
            found.update(dict.fromkeys(str(name) for name in node["scopes"]))
    return tuple(found)


def from_document(document: Mapping[str, Any], token_path: str, source: str) -> Capabilities:
    """The capabilities an OpenAPI document declares for the target."""
    operation_scopes: dict[str, tuple[str, ...]] = {}
    revocation = logout = None
    for method, path, operation in operations(document):
        if method == "POST" and path.rstrip("/").endswith("/revoke"):
            revocation = revocation or path
        if method == "POST" and path.rstrip("/").endswith("/logout"):
            logout = logout or path
        for requirement in security_of(document, operation):
            scopes = [s for names in (requirement or {}).values() if isinstance(names, list) for s in names]
            if scopes and "{" not in path:
                operation_scopes.setdefault(f"{method} {path}", tuple(str(s) for s in scopes))
    defined = _defined_scopes(document) or tuple(dict.fromkeys(s for v in operation_scopes.values() for s in v))
    return Capabilities(
        refresh_tokens=_documents_refresh_grant(document, token_path),
        revocation_path=revocation,
        logout_path=logout,
        operation_scopes=operation_scopes,
        defined_scopes=defined,
        source=source,
    )


def merged(discovered: Capabilities, declared: DeclaredCapabilities) -> Capabilities:
    """What the config file declares wins over what a contract says."""
    if not declared.anything:
        return discovered
    changes: dict[str, Any] = {"source": f"the config file, over {discovered.source}"}
    if declared.refresh_tokens is not None:
        changes["refresh_tokens"] = declared.refresh_tokens
    if declared.revocation_path is not None:
        changes["revocation_path"] = declared.revocation_path or None
    if declared.logout_path is not None:
        changes["logout_path"] = declared.logout_path or None
    if declared.operation_scopes is not None:
        changes["operation_scopes"] = dict(declared.operation_scopes)
        named = tuple(dict.fromkeys(s for v in declared.operation_scopes.values() for s in v))
        changes["defined_scopes"] = tuple(dict.fromkeys((*discovered.defined_scopes, *named)))
    return replace(discovered, **changes)
