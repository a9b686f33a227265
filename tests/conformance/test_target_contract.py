"""The target's contract: where it comes from, how often it is fetched, and what the kit's capability members mean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from conformance.config import build_config
from conformance.errors import ConfigError
from conformance.target_contract import TargetContract, current_kit_version, kit_contract_path, kit_contracts
from reference_impl.contract import contract_path, load_contract

from .harness import Answer, Scope, Status, explain, rewrite, run_checks
from .tutorial_app import tutorial_app

FLAGS = {"base_url": "http://127.0.0.1:8000", "username": "u", "password": "p"}


def test_the_kit_knows_its_released_contracts_and_the_current_one() -> None:
    assert list(kit_contracts()) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "1.5.0"]
    assert current_kit_version() == load_contract()["info"]["version"]
    assert kit_contract_path(current_kit_version()) == contract_path()
    assert TargetContract.kit()["info"]["version"] == current_kit_version()
    for version in ("1.0.0", "1.3.0"):
        contract = TargetContract.kit(version)
        assert (contract["info"]["version"], contract.kit_version, contract.source) == (
            version,
            version,
            f"the kit's contract {version} (kit:{version})",
        )


def test_an_unknown_version_is_a_config_error_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({**FLAGS, "contract": "kit:2.0.0"}, {})
    assert str(raised.value) == (
        "unknown version of the kit's contract kit:2.0.0: known versions are 1.0.0, 1.1.0, 1.2.0, 1.3.0, 1.4.0, 1.5.0; "
        "kit:resource-server is the resource-server part of the current one"
    )


def test_the_contract_setting_names_a_file_or_a_kit_version(tmp_path: Path) -> None:
    own = tmp_path / "api.yaml"
    own.write_text("openapi: 3.1.0\npaths: {}\n", encoding="utf-8")
    config = build_config({**FLAGS, "contract": str(own)}, {})
    assert (config.contract, config.contract_kit_version) == (own, None)
    config = build_config({**FLAGS, "contract": "kit:1.3.0"}, {})
    assert (config.contract, config.contract_kit_version) == (kit_contract_path("1.3.0"), "1.3.0")
    file = tmp_path / "c.yaml"
    file.write_text("contract: kit:1.2.0\n", encoding="utf-8")
    assert build_config(FLAGS, {}, file).contract_kit_version == "1.2.0"
    assert build_config({**FLAGS, "contract": str(own)}, {}, file).contract_kit_version is None  # the flag wins
    assert build_config(FLAGS, {}).contract is None
    with pytest.raises(ConfigError, match="the contract file .*nope.yaml does not exist"):
        build_config({**FLAGS, "contract": str(tmp_path / "nope.yaml")}, {})


def test_for_config_reads_the_file_the_kit_or_what_the_target_serves(tmp_path: Path) -> None:
    own = tmp_path / "api.yaml"
    own.write_text(yaml.safe_dump({"openapi": "3.1.0", "paths": {"/me": {}}}), encoding="utf-8")
    from_file = TargetContract.for_config(own, None)
    assert (from_file.known, from_file.describes_target, from_file.source) == (True, True, f"the contract {own}")
    kit = TargetContract.for_config(kit_contract_path("1.3.0"), "1.3.0")
    assert (kit.kit_version, kit.describes_target) == ("1.3.0", False)  # the kit declares every capability
    served = TargetContract.for_config(None, None)
    assert served.note() == "contract: not read (no selected check needed it)"
    assert not served.known  # no client: nothing fetched
    with pytest.raises(ConfigError, match="not an OpenAPI document"):
        (tmp_path / "x.yaml").write_text("a: 1\n", encoding="utf-8")
        TargetContract.for_config(tmp_path / "x.yaml", None)


def counting(app: Any, seen: list[str]) -> Any:
    def count(scope: Scope, answer: Answer) -> None:
        seen.append(scope["path"])

    return rewrite(app, count)


def test_the_served_document_is_fetched_once_per_run_for_the_contract_and_the_capabilities(
    reference: FastAPI,
) -> None:
    seen: list[str] = []
    contract = TargetContract.served()
    results = run_checks(counting(reference, seen), ["BASE-001", "PROT-004", "REFRESH-001"], contract=contract)
    assert {r.status for r in results.values()} == {Status.PASS}, explain(results)
    assert seen.count("/openapi.json") == 1
    assert contract.note() == "contract: the target's /openapi.json: body shapes are checked against its schemas"


def test_a_target_claiming_the_kits_contract_has_the_capabilities_it_serves_not_all_of_the_kits() -> None:
    seen: list[str] = []
    results = run_checks(counting(tutorial_app(), seen), ["BASE-001", "PROT-004"], contract=TargetContract.kit())
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert results["PROT-004"].status is Status.SKIP, explain(results)
    assert "looked at: the target's /openapi.json" in results["PROT-004"].message
    assert seen.count("/openapi.json") == 1


def test_without_any_contract_the_note_says_only_the_core_rules_applied() -> None:
    app = tutorial_app()
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", "") != "/openapi.json"]
    contract = TargetContract.served()
    results = run_checks(app, ["BASE-001"], contract=contract)
    assert results["BASE-001"].status is Status.PASS, explain(results)
    assert not contract.known
    assert contract.note() == (
        "contract: none (no --contract, and the target serves no OpenAPI document at /openapi.json): only the core "
        "rules apply to body shapes; give --contract PATH, or --contract kit:VERSION if the server implements the "
        "kit's contract"
    )


def test_capability_members_of_the_kits_contract_follow_the_claim() -> None:
    for version in ("1.3.0", "1.4.0"):
        kit = TargetContract.kit(version)
        with_scopes = kit.for_capabilities(frozenset({"scopes"}))["components"]["schemas"]["User"]["required"]
        without = kit.for_capabilities(frozenset())["components"]["schemas"]["User"]["required"]
        assert with_scopes == ["username", "email", "full_name", "disabled", "scopes"]
        assert without == ["username", "email", "full_name", "disabled"]
    assert "scopes" in TargetContract.kit("1.3.0")["components"]["schemas"]["User"]["required"]  # left as released
    own = TargetContract.given(TargetContract.kit("1.3.0").document or {})
    assert "scopes" in own.for_capabilities(frozenset())["components"]["schemas"]["User"]["required"]


def test_the_operation_path_in_the_contract() -> None:
    kit = TargetContract.kit()
    assert kit.path_for("/users/me", "/users/me") == "/users/me"
    assert kit.path_for("/api/me", "/users/me") == "/users/me"  # the kit's operation, served elsewhere
    own = TargetContract.given({"paths": {"/me": {}}})
    assert own.path_for("/me", "/users/me") == "/me"
    assert own.path_for("/users/me", "/users/me") is None
