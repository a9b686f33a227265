"""Which contract a fuzz run follows, and so which operations it fuzzes and by which rules.

- ``--contract PATH``: the team's own contract, all of it, judged by it;
- else the OpenAPI document the target serves at ``/openapi.json`` (FastAPI apps do), all of it,
  judged by it;
- else the kit's contract reduced to what any password-flow / bearer API has: the token endpoint,
  the me path and the protected paths (at the paths the config names), plus the operations of the
  capabilities the config file claims. The kit's body schemas are not the target's: responses of
  this reduced document are judged by the core rules only (``core_rules``): documented status
  codes, no 5xx, ``application/json`` where RFC 6749 §5.1 and §5.2 require it, a Content-Type on
  any other answer with content, ``Cache-Control: no-store`` on a token (RFC 6749 §5.1), a Bearer
  challenge on every 401 (RFC 6750 §3), ``ignored_auth`` and ``unissued_token_rejected``.

Whatever the source, a document that lists no refusal for an operation is read with the refusals the
RFCs give it: an operation that declares bearer security may answer 401 (with its challenge, RFC 6750
§3) or 403 when it lists neither, and the token endpoint 400 or 401 (RFC 6749 §5.2) and 429 (RFC 6585
§4) when it lists neither 400 nor 401 (FastAPI's generated documents list only 200 and 422).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..capabilities import Capabilities, merged
from ..client import Client
from ..config import RunConfig
from ..contract import HTTP_METHODS, default_contract_path, load_contract, resolve, security_of
from ..target_contract import SERVED_CONTRACT_PATH, served_document

OPTION, SERVED, CORE = "contract", "served", "core"
JSON = "application/json"
ANY_MEDIA = "*/*"
BEARER_CHALLENGE = {
    "description": "RFC 6750 §3: a refused bearer request carries a Bearer challenge.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[Bb][Ee][Aa][Rr][Ee][Rr]( |$)"},
}
NO_STORE = {
    "description": "RFC 6749 §5.1: an answer that carries a token must not be stored.",
    "required": True,
    "schema": {"type": "string", "pattern": "(^|[ ,])[Nn][Oo]-[Ss][Tt][Oo][Rr][Ee]($|[ ,;])"},
}


@dataclass(frozen=True)
class FuzzContract:
    """The document a run fuzzes, where it came from, and how its answers are judged."""

    source: str  # OPTION, SERVED or CORE
    location: str  # the file, the URL, or the kit's contract
    document: dict[str, Any]
    path: Path | None = None  # the file of a --contract (schemathesis resolves its references from there)
    core_rules: bool = False  # the kit's response schemas are not the target's: bodies are not judged
    left_out: tuple[str, ...] = ()  # operations the reduction could not fuzz, each with its reason
    bearer_only: bool = False  # a token run: only the operations that take a bearer token

    @property
    def description(self) -> str:
        extent = "its operations that take a bearer token" if self.bearer_only else "all of it"
        if self.source == OPTION:
            return f"{self.location} (--contract): {extent}"
        if self.source == SERVED:
            return f"the OpenAPI document the target serves, {self.location}: {extent}"
        if self.bearer_only:
            return (
                f"no --contract and no OpenAPI document at {SERVED_CONTRACT_PATH}: {self.location}, reduced to the "
                "me path, the protected paths and the operations the config file's capabilities name that take a "
                "bearer token"
            )
        return (
            f"no --contract and no OpenAPI document at {SERVED_CONTRACT_PATH}: {self.location}, reduced to the "
            "core operations (the token endpoint, the me path, the protected paths) and the capabilities the "
            "config file claims"
        )

    @property
    def rules(self) -> str | None:
        if not self.core_rules:
            return None
        return (
            "the kit's response schemas are not the target's: answers are judged by the core rules (status codes, "
            "no 5xx, JSON from the token endpoint, a Content-Type with any content, no-store on tokens, a Bearer "
            "challenge on 401, ignored_auth, unissued_token_rejected); response_schema_conformance is off"
        )


def choose_contract(config: RunConfig, client: Client) -> FuzzContract:
    """``--contract``, else the document the target serves, else the kit's core operations."""
    if config.contract is not None:
        document = load_contract(config.contract)
        return FuzzContract(OPTION, str(config.contract), with_implied_responses(document, config), config.contract)
    served = served_document(client)
    if served is not None:
        url = client.url(SERVED_CONTRACT_PATH)
        return FuzzContract(SERVED, url, with_implied_responses(dict(served), config))
    return core_contract(config)


def core_contract(config: RunConfig) -> FuzzContract:
    """The kit's contract reduced to the core operations and the capabilities the config file claims."""
    kit = load_contract(default_contract_path())
    declared = merged(Capabilities(source="the config file"), config.capabilities)
    document, left_out = core_document(kit, config, declared)
    version = kit.get("info", {}).get("version", "?")
    return FuzzContract(CORE, f"the kit's contract {version}", document, core_rules=True, left_out=left_out)


def _security_schemes(document: Mapping[str, Any]) -> dict[str, Any]:
    schemes = document.get("components", {}).get("securitySchemes", {})
    return {name: resolve(document, scheme) for name, scheme in schemes.items()} if isinstance(schemes, dict) else {}


def declares_bearer(document: Mapping[str, Any], operation: Mapping[str, Any]) -> bool:
    """Whether every way to satisfy the operation's security includes a bearer token (HTTP bearer, OAuth 2.0)."""
    requirements = security_of(document, operation)
    if not requirements:
        return False
    schemes = _security_schemes(document)

    def bearer(name: str) -> bool:
        scheme = schemes.get(name)
        if not isinstance(scheme, Mapping):
            return False
        kind = str(scheme.get("type", "")).lower()
        return kind in ("oauth2", "openidconnect") or (
            kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer"
        )

    return all(isinstance(r, Mapping) and r and any(bearer(str(n)) for n in r) for r in requirements)


def _implied(description: str, headers: Mapping[str, Any] | None = None, media: str = ANY_MEDIA) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {media: {"schema": {}}}}
    if headers:
        response["headers"] = dict(headers)
    return response


def with_implied_responses(document: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """``document`` with the refusals the RFCs allow where it lists none (a copy; the input is untouched)."""
    document = copy.deepcopy(document)
    token_path = config.paths.token
    for path, item in document.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            if not isinstance(responses, dict) or "default" in responses:
                continue
            listed = {str(status).upper() for status in responses}
            if method == "post" and path == token_path:
                if not listed & {"400", "401", "4XX"}:  # the document says nothing of how a login is refused
                    responses["400"] = _implied("RFC 6749 §5.2 error", media=JSON)
                    responses["401"] = _implied("RFC 6749 §5.2 invalid_client", media=JSON)
                    responses.setdefault("429", _implied("RFC 6585 §4"))
            elif declares_bearer(document, operation) and not listed & {"401", "403", "4XX"}:
                responses["401"] = _implied("RFC 6750 §3", {"WWW-Authenticate": BEARER_CHALLENGE})
                responses["403"] = _implied("RFC 6750 §3.1 insufficient_scope")
    return document


# --- the kit's contract reduced to the core operations -------------------------------------------------


# The answers the RFCs send as JSON: RFC 6749 §5.1 and §5.2 (the token endpoint), RFC 7009 §2.2.1
# (revocation errors, as RFC 6749 §5.2).
TOKEN_JSON = frozenset({"200", "400"})
REVOCATION_JSON = frozenset({"400"})


def _core_response(
    kit: Mapping[str, Any], status: str, response: Any, json_statuses: frozenset[str], token: bool, secured: bool
) -> dict[str, Any]:
    response = resolve(kit, response)
    out: dict[str, Any] = {"description": str(response.get("description", "")).strip() or status}
    if response.get("content"):
        out["content"] = {(JSON if status in json_statuses else ANY_MEDIA): {"schema": {}}}
    headers: dict[str, Any] = {}
    if token and status == "200":
        headers["Cache-Control"] = NO_STORE
    if secured and status == "401":
        headers["WWW-Authenticate"] = BEARER_CHALLENGE
    if headers:
        out["headers"] = headers
    return out


def _core_operation(
    kit: Mapping[str, Any],
    template: Mapping[str, Any],
    *,
    json_statuses: frozenset[str] = frozenset(),
    token: bool = False,
    scopes: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """``template`` judged by the core rules: any body, the headers the RFCs require; bearer security."""
    operation = copy.deepcopy({k: v for k, v in template.items() if k not in ("responses", "security")})
    secured = scopes is not None
    operation["security"] = [{"bearerAuth": list(scopes)}] if scopes is not None else []
    operation["responses"] = {
        str(status): _core_response(kit, str(status), response, json_statuses, token, secured)
        for status, response in template.get("responses", {}).items()
    }
    return operation


def core_document(
    kit: Mapping[str, Any], config: RunConfig, claimed: Capabilities
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The kit's contract reduced to the target's core operations and claimed capabilities, at its paths."""
    kit_paths = kit["paths"]
    paths: dict[str, dict[str, Any]] = {}
    left_out: list[str] = []

    def put(path: str, method: str, operation: dict[str, Any]) -> None:
        paths.setdefault(path, {})[method.lower()] = operation

    token = _core_operation(kit, kit_paths["/token"]["post"], json_statuses=TOKEN_JSON, token=True)
    if not claimed.refresh_tokens:  # the refresh grant is a capability: without it, only the password grant
        token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"] = {
            "$ref": "#/components/schemas/PasswordGrantRequest"
        }
    put(config.paths.token, "post", token)
    put(config.paths.me, "get", _core_operation(kit, kit_paths["/users/me"]["get"], scopes=()))
    for protected in config.paths.protected:
        put(protected, "get", _core_operation(kit, kit_paths["/protected-resource"]["get"], scopes=()))
    if claimed.revocation_path:
        revoke = _core_operation(kit, kit_paths["/revoke"]["post"], json_statuses=REVOCATION_JSON)
        put(claimed.revocation_path, "post", revoke)
    if claimed.logout_path:
        left_out.append(f"POST {claimed.logout_path} (logout) is not fuzzed: it would end the fuzzer's own token")
    for label, scopes in claimed.operation_scopes.items():
        method, _, path = label.partition(" ")
        existing = paths.get(path, {}).get(method.lower())
        if existing is not None:
            existing["security"] = [{"bearerAuth": list(scopes)}]
            continue
        template = kit_paths.get(path, {}).get(method.lower())
        if template is None and method == "GET":
            template = kit_paths["/protected-resource"]["get"]
        if template is None:
            left_out.append(
                f"{label} (capabilities.scopes) is not fuzzed: the kit's contract does not describe its request; "
                "fuzz it with your own --contract"
            )
            continue
        put(path, method, _core_operation(kit, template, scopes=tuple(scopes)))
    components = copy.deepcopy(dict(kit.get("components", {})))
    components.pop("responses", None)  # inlined above
    components.pop("headers", None)
    schemes = copy.deepcopy(kit["components"]["securitySchemes"])
    flow = schemes["oauth2Password"]["flows"]["password"]  # where the kit's contract says tokens come from
    flow["tokenUrl"] = config.paths.token
    if claimed.refresh_tokens:
        flow["refreshUrl"] = config.paths.token
    else:
        flow.pop("refreshUrl", None)
    components["securitySchemes"] = schemes
    document = {
        "openapi": kit.get("openapi", "3.1.0"),
        "info": {
            "title": f"{kit.get('info', {}).get('title', 'the kit')}: core operations",
            "version": str(kit.get("info", {}).get("version", "0")),
        },
        "paths": paths,
        "components": components,
    }
    return document, tuple(left_out)


# --- a token run: the protected operations only ----------------------------------------------------------


def protected_only(contract: FuzzContract) -> FuzzContract:
    """``contract`` without the operations that take no bearer token, each named in ``left_out``.

    A token run has no password to log in with: the token endpoint cannot be fuzzed with a valid login,
    and an operation without bearer security says nothing of how the API verifies tokens. Their path
    items stay (empty of operations), so that ``--exclude-path`` still knows them.
    """
    document = copy.deepcopy(contract.document)
    dropped: list[str] = []
    for path, item in document.get("paths", {}).items():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict) and not declares_bearer(document, operation):
                dropped.append(f"{method.upper()} {path}")
                del item[method]
    if not dropped:
        return replace(contract, bearer_only=True)
    note = (
        f"{', '.join(dropped)} {'is' if len(dropped) == 1 else 'are'} not fuzzed: a run with a given, printed or "
        "minted token fuzzes the operations that take a bearer token only (the token endpoint's own fuzzing "
        "needs the password grant: run again with --username and a password)"
    )
    return replace(contract, document=document, left_out=(*contract.left_out, note), bearer_only=True)
