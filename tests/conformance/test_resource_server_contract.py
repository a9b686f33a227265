"""The resource-server part of the contract (``kit:resource-server``): valid, equal to ``openapi.yaml``, usable.

``conformance/data/resource-server.yaml`` is the contract of an API that verifies an identity provider's
tokens and has no token endpoint. Its operations, challenges and bodies are copies of ``openapi.yaml``'s;
these tests keep the two from drifting apart, and run the suite in issuer mode with it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from openapi_spec_validator import validate

from conformance.config import build_config
from conformance.target_contract import (
    RESOURCE_SERVER,
    TargetContract,
    current_kit_version,
    kit_contract_path,
    kit_contracts,
    resource_server_contract_path,
)
from reference_impl.contract import load_contract

from ..server_process import Server
from .harness import Answer, Scope, Status, explain, rewrite, run_checks
from .test_issuer import Issuer
from .test_issuer_mode import AUDIENCE, JWT_CONFORMANCE, issuer, trusting_reference

__all__ = ["issuer", "trusting_reference"]  # the fixtures of test_issuer_mode, used here by name

OPERATIONS = {("/users/me", "get"), ("/protected-resource", "get")}
PASSWORD_FLOW_SCHEME = "oauth2Password"  # the full contract's login for interactive docs: it needs /token
SOURCE = f"the kit's resource-server contract {load_contract()['info']['version']} (kit:resource-server)"


@pytest.fixture(scope="module")
def part() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(resource_server_contract_path().read_text(encoding="utf-8"))
    return document


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield str(value)
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def without_password_flow(operation: dict[str, Any]) -> dict[str, Any]:
    """The full contract's operation with the password-flow alternative taken out of its security."""
    security = [req for req in operation["security"] if PASSWORD_FLOW_SCHEME not in req]
    return {**operation, "security": security}


# -- the document ---------------------------------------------------------------------------------------------


def test_it_is_a_valid_openapi_31_document(part: dict[str, Any]) -> None:
    assert part["openapi"] == "3.1.0"
    validate(part)


def test_it_has_the_protected_operations_of_the_full_contract_and_nothing_of_the_token_endpoint(
    part: dict[str, Any],
) -> None:
    full = load_contract()
    found = {(path, method) for path, item in part["paths"].items() for method in item}
    assert found == OPERATIONS
    for path, method in OPERATIONS:
        assert part["paths"][path][method] == without_password_flow(full["paths"][path][method]), (path, method)
        assert part["paths"][path][method]["security"] == [
            {"bearerAuth": full["paths"][path][method]["security"][0]["bearerAuth"]}
        ]
    assert list(part["components"]["securitySchemes"]) == ["bearerAuth"]
    text = resource_server_contract_path().read_text(encoding="utf-8")
    assert "tokenUrl" not in text and "/token`" not in text and "/revoke" not in text


def test_every_component_equals_the_full_contracts(part: dict[str, Any]) -> None:
    full = load_contract()["components"]
    for kind in ("schemas", "responses", "headers"):
        for name, component in part["components"][kind].items():
            assert component == full[kind][name], f"{kind}/{name} differs from openapi.yaml's"
    assert set(part["components"]["responses"]) == {
        "BearerUnauthorized",
        "BearerInvalidRequest",
        "InsufficientScope",
        "ServiceUnavailable",
    }
    assert set(part["components"]["schemas"]) == {"BearerError", "User", "Scope", "ProtectedResource", "Unavailable"}
    scheme, full_scheme = part["components"]["securitySchemes"]["bearerAuth"], full["securitySchemes"]["bearerAuth"]
    assert {k: v for k, v in scheme.items() if k != "description"} == {
        k: v for k, v in full_scheme.items() if k != "description"
    }


def test_every_reference_resolves_and_every_component_is_used(part: dict[str, Any]) -> None:
    used = set(refs(part))
    declared = {
        f"#/components/{kind}/{name}"
        for kind in ("schemas", "responses", "headers")
        for name in part["components"][kind]
    }
    assert used == declared


def test_it_has_the_version_of_the_full_contract_and_states_the_token_rules(part: dict[str, Any]) -> None:
    assert part["info"]["version"] == load_contract()["info"]["version"]
    description = part["info"]["description"]
    for rule in ("RFC 9068", "`typ: at+jwt`", "`iss`", "`aud`", "`exp`", "`sub`", "JWK Set", "`jku`", "`kid`"):
        assert rule in description, rule
    assert "conformance/data/resource-server.yaml" in load_contract()["info"]["description"]


# -- kit:resource-server --------------------------------------------------------------------------------------


def test_kit_resource_server_names_the_part_and_leaves_the_versions_alone() -> None:
    config = build_config(
        {"base_url": "http://127.0.0.1:8000", "username": "u", "password": "p", "contract": "kit:resource-server"}, {}
    )
    assert (config.contract, config.contract_kit_version) == (resource_server_contract_path(), RESOURCE_SERVER)
    assert kit_contract_path(RESOURCE_SERVER).is_file()
    contract = TargetContract.for_config(config.contract, config.contract_kit_version)
    assert (contract.kit_version, contract.describes_target, contract.source) == (RESOURCE_SERVER, False, SOURCE)
    assert contract.note() == f"contract: {SOURCE}: body shapes are checked against its schemas"
    assert RESOURCE_SERVER not in kit_contracts()
    assert current_kit_version() == load_contract()["info"]["version"]


def test_the_reference_app_passes_base_001_on_it_and_an_extra_member_fails(reference: FastAPI) -> None:
    results = run_checks(reference, ["BASE-001"], contract=TargetContract.kit(RESOURCE_SERVER))
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert (
        results["BASE-001"].message == f"the user is named by username; matches the schema of GET /users/me in {SOURCE}"
    )

    def leak(scope: Scope, answer: Answer) -> None:
        if scope["path"] == "/users/me" and answer.status == 200:
            answer.body = json.dumps({**json.loads(answer.body), "tenant": "t1"}).encode()
            answer.set_header("content-length", str(len(answer.body)))

    broken = run_checks(rewrite(reference, leak), ["BASE-001"], contract=TargetContract.kit(RESOURCE_SERVER))
    assert broken["BASE-001"].status is Status.FAIL, explain(broken)
    assert broken["BASE-001"].message == f"the /users/me body departs from the schema of {SOURCE}"


# -- issuer mode end to end -----------------------------------------------------------------------------------


def test_issuer_mode_with_the_resource_server_contract_on_the_trusting_reference_server(
    tmp_path: Path, issuer: Issuer, trusting_reference: Server
) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [
            str(JWT_CONFORMANCE),
            "run",
            "--base-url",
            trusting_reference.base_url,
            "--issuer-keys",
            str(issuer.keys_dir),
            "--audience",
            AUDIENCE,
            "--subject",
            "johndoe",
            "--scope",
            "me items:read",
            "--contract",
            "kit:resource-server",
            "--select",
            "BASE",
            "--select",
            "PROT-001",
            "--select",
            "PROT-005",
            "--json-report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    document = json.loads(report.read_text())
    results = {item["id"]: (item["status"], item["message"]) for item in document["results"]}
    assert {check_id: status for check_id, (status, _) in results.items()} == {
        "BASE-001": "pass",
        "BASE-002": "pass",
        "BASE-003": "pass",
        "PROT-001": "pass",
        "PROT-005": "pass",
    }
    assert results["BASE-001"][1] == f"the user is named by username; matches the schema of GET /users/me in {SOURCE}"
    assert document["notes"][0] == f"contract: {SOURCE}: body shapes are checked against its schemas"
    assert document["notes"][1].startswith("issuer mode: every token was minted as the issuer ")
