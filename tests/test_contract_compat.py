"""The kit's contract evolves without breaking its implementers or their clients.

``openapi.yaml`` is compared with every released contract (``conformance/data/contracts/``): a
breaking change (``tests/contract_compat.py`` says which) needs a new major version. The comparison
itself is proven on small documents, one kind of breaking change at a time.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reference_impl.contract import load_contract

from .contract_compat import breaking_changes, version_key, violations

ROOT = Path(__file__).resolve().parent.parent
RELEASED = ROOT / "conformance" / "data" / "contracts"


def released() -> dict[str, dict[str, Any]]:
    documents = {path.stem: yaml.safe_load(path.read_text(encoding="utf-8")) for path in RELEASED.glob("*.yaml")}
    return dict(sorted(documents.items(), key=lambda item: version_key(item[0])))


# -- the kit's own history ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(released()))
def test_the_contract_keeps_every_released_minor_version_working(version: str) -> None:
    old = released()[version]
    assert old["info"]["version"] == version
    assert violations(old, load_contract()) == []


def test_the_contract_version_is_newer_than_every_released_one() -> None:
    current = version_key(load_contract()["info"]["version"])
    assert all(current > version_key(version) for version in released())
    assert list(released()) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]


def test_every_version_has_a_changelog_line() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for version in [*released(), load_contract()["info"]["version"]]:
        assert re.search(rf"^- Contract {re.escape(version)}\b", changelog, re.MULTILINE), version


def test_the_comparison_catches_the_one_break_in_the_history() -> None:
    # 1.3.0 made User.scopes required of every server; 1.4.0 undid it (the scopes capability's member).
    history = released()
    assert breaking_changes(history["1.2.0"], history["1.3.0"]) == [
        "GET /users/me 200 application/json: member 'scopes' became required"
    ]
    assert breaking_changes(history["1.1.0"], history["1.2.0"]) == []


# -- the comparison, one kind of change at a time ----------------------------------------------------

FORM = "application/x-www-form-urlencoded"


def base() -> dict[str, Any]:
    """A small contract: a form-encoded token request, a me answer, a header, a parameter."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1.0.0"},
        "paths": {
            "/token": {
                "post": {
                    "requestBody": {"content": {FORM: {"schema": {"$ref": "#/components/schemas/Form"}}}},
                    "responses": {
                        "200": {
                            "headers": {"Cache-Control": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}},
                        },
                        "400": {"content": {"application/json": {"schema": {"type": "object"}}}},
                    },
                }
            },
            "/items": {
                "get": {
                    "security": [{"bearer": []}],
                    "parameters": [{"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 100}}],
                    "responses": {"200": {"content": {"application/json": {"schema": {"type": "array"}}}}},
                }
            },
            "/health": {"get": {"responses": {"200": {"description": "up"}}}},
        },
        "components": {
            "schemas": {
                "Form": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string", "minLength": 1, "maxLength": 150},
                        "password": {"type": "string", "minLength": 1},
                        "kind": {"type": "string", "enum": ["a", "b"]},
                        "count": {"type": "number", "minimum": 0},
                    },
                },
                "Token": {
                    "type": "object",
                    "required": ["access_token"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"type": "string", "enum": ["bearer", "Bearer"]},
                        "expires_in": {"type": "integer"},
                    },
                },
            }
        },
    }


Change = Callable[[dict[str, Any]], object]


def changed(change: Change) -> dict[str, Any]:
    document = copy.deepcopy(base())
    change(document)
    return document


def schemas(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = document["components"]["schemas"]
    return result


def token_op(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = document["paths"]["/token"]["post"]
    return result


def items_op(document: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = document["paths"]["/items"]["get"]
    return result


def form_member(name: str, **rule: Any) -> Change:
    return lambda d: schemas(d)["Form"]["properties"][name].update(rule)


BREAKING: dict[str, tuple[Change, str]] = {
    "a new required response member": (
        lambda d: schemas(d)["Token"]["required"].append("expires_in"),
        "POST /token 200 application/json: member 'expires_in' became required",
    ),
    "a removed operation": (lambda d: d["paths"].pop("/health"), "GET /health: operation removed"),
    "a removed status code": (lambda d: token_op(d)["responses"].pop("400"), "POST /token: response 400 removed"),
    "a removed response media type": (
        lambda d: token_op(d)["responses"]["400"].update(content={"text/plain": {}}),
        "POST /token 400: response media type application/json removed",
    ),
    "a narrower response enum": (
        lambda d: schemas(d)["Token"]["properties"]["token_type"].update(enum=["bearer"]),
        "POST /token 200 application/json.token_type: values ['bearer', 'Bearer'] narrowed to ['bearer']",
    ),
    "additionalProperties: false on a response": (
        lambda d: schemas(d)["Token"].update(additionalProperties=False),
        "POST /token 200 application/json: additionalProperties: false added",
    ),
    "a response header made required": (
        lambda d: token_op(d)["responses"]["200"]["headers"]["Cache-Control"].update(required=True),
        "POST /token 200: header Cache-Control became required",
    ),
    "a new required request member": (
        lambda d: schemas(d)["Form"]["required"].append("kind"),
        f"POST /token request {FORM}: member 'kind' became required",
    ),
    "a new required parameter": (
        lambda d: items_op(d)["parameters"].append({"name": "page", "in": "query", "required": True}),
        "GET /items: query parameter 'page' added as required",
    ),
    "a parameter made required": (
        lambda d: items_op(d)["parameters"][0].update(required=True),
        "GET /items: query parameter 'limit' became required",
    ),
    "a lowered parameter maximum": (
        lambda d: items_op(d)["parameters"][0]["schema"].update(maximum=50),
        "GET /items: query parameter 'limit': maximum 100 lowered to 50",
    ),
    "a request body made required": (
        lambda d: token_op(d)["requestBody"].update(required=True),
        "POST /token: request body became required",
    ),
    "a narrower request type": (
        form_member("count", type="integer"),
        f"POST /token request {FORM}.count: type ['integer', 'number'] narrowed to ['integer']",
    ),
    "a narrower request enum": (
        form_member("kind", enum=["a"]),
        f"POST /token request {FORM}.kind: values ['a', 'b'] narrowed to ['a']",
    ),
    "a request const": (
        form_member("kind", const="b"),
        f"POST /token request {FORM}.kind: values ['a', 'b'] narrowed to ['b']",
    ),
    "a raised minLength": (
        form_member("password", minLength=8),
        f"POST /token request {FORM}.password: minLength 1 raised to 8",
    ),
    "a lowered maxLength": (
        form_member("username", maxLength=64),
        f"POST /token request {FORM}.username: maxLength 150 lowered to 64",
    ),
    "a raised minimum": (form_member("count", minimum=1), f"POST /token request {FORM}.count: minimum 0 raised to 1"),
    "a new maximum": (form_member("count", maximum=9), f"POST /token request {FORM}.count: maximum none lowered to 9"),
    "a pattern that refuses a value the syntax allows": (
        form_member("username", pattern="^[a-z]+$"),
        f"POST /token request {FORM}.username: pattern '^[a-z]+$' refuses '0', which the old rule admitted",
    ),
    "a format it cannot judge": (
        form_member("username", format="email"),
        f'POST /token request {FORM}.username: format null changed to "email"',
    ),
    "a removed request media type": (
        lambda d: token_op(d)["requestBody"].update(content={"application/json": {"schema": {}}}),
        f"POST /token: request media type {FORM} removed",
    ),
    "credentials newly required": (
        lambda d: d["paths"]["/health"]["get"].update(security=[{"bearer": []}]),
        "GET /health: now requires credentials",
    ),
}


@pytest.mark.parametrize("kind", list(BREAKING))
def test_each_kind_of_breaking_change_is_caught(kind: str) -> None:
    change, says = BREAKING[kind]
    assert breaking_changes(base(), changed(change)) == [says]


def test_a_dropped_alternative_of_a_request_is_caught() -> None:
    two = changed(
        lambda d: token_op(d)["requestBody"]["content"][FORM].update(
            schema={"oneOf": [{"$ref": "#/components/schemas/Form"}, {"type": "object", "required": ["x"]}]}
        )
    )
    assert breaking_changes(base(), two) == []  # a new alternative only widens
    dropped = f"POST /token request {FORM} (alternative 2): no alternative of the new schema admits what it admitted"
    assert breaking_changes(two, base()) == [
        dropped,
        f"POST /token request {FORM}: member 'password' became required",
        f"POST /token request {FORM}: member 'username' became required",
    ]


def test_a_new_major_version_may_break() -> None:
    new = changed(lambda d: d["paths"].pop("/health"))
    assert violations(base(), new) == ["GET /health: operation removed"]
    new["info"]["version"] = "2.0.0"
    assert violations(base(), new) == []


WIDENING: dict[str, Change] = {
    "a new optional response member": lambda d: schemas(d)["Token"]["properties"].update(scope={"type": "string"}),
    "a new operation": lambda d: d["paths"].update({"/revoke": {"post": {"responses": {"200": {}}}}}),
    "a new status code": lambda d: token_op(d)["responses"].update({"429": {"description": "slow down"}}),
    "a member no longer required": lambda d: schemas(d)["Form"].update(required=["username"]),
    "a wider enum": form_member("kind", enum=["a", "b", "c"]),
    "a looser bound": form_member("password", minLength=0),
    "a wider type": form_member("count", type=["number", "null"]),
    "a new optional parameter": lambda d: items_op(d)["parameters"].append({"name": "page", "in": "query"}),
    "a new media type": lambda d: token_op(d)["requestBody"]["content"].update({"application/json": {}}),
    # RFC 6749 A.16: a password is *UNICODECHARNOCRLF; a NUL was never a value a client could send.
    "a pattern that refuses only what RFC 6749 never allowed": form_member("password", pattern="^[^\\x00]+$"),
}


@pytest.mark.parametrize("kind", list(WIDENING))
def test_what_only_widens_is_not_breaking(kind: str) -> None:
    assert breaking_changes(base(), changed(WIDENING[kind])) == []


def test_a_pattern_that_gains_an_alternative_widens_and_one_that_loses_it_narrows() -> None:
    narrow = changed(lambda d: schemas(d)["Token"]["properties"]["access_token"].update(pattern="^a(b|c)$"))
    wide = changed(lambda d: schemas(d)["Token"]["properties"]["access_token"].update(pattern="^a(b|c|d)$"))
    assert breaking_changes(narrow, wide) == []
    assert breaking_changes(wide, narrow) == [
        "POST /token 200 application/json.access_token: pattern '^a(b|c)$' refuses 'ad', which the old rule admitted"
    ]
