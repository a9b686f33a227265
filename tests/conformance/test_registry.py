"""The registry meta-test: IDs unique and well-formed, every check documented, every area imported."""

from __future__ import annotations

import inspect
import pkgutil
import re
from collections.abc import Iterable

import pytest

import conformance.checks as checks_package
from conformance.model import Level
from conformance.registry import GROUP_ORDER, REGISTRY, DuplicateCheckError, all_checks, check, select

ALL = all_checks()


def test_ids_are_unique_and_well_formed() -> None:
    ids = [c.id for c in ALL]
    assert len(ids) == len(set(ids))
    for check_id in ids:
        assert re.fullmatch(r"[A-Z]+(-[A-Z]+)?-\d{3}", check_id), check_id


def test_every_check_has_a_requirement_a_spec_and_a_rule_name() -> None:
    names = [c.name for c in ALL]
    assert len(names) == len(set(names)), "two checks share a function name"
    for item in ALL:
        assert item.func.__doc__ and item.title.strip(), f"{item.id} has no requirement docstring"
        assert item.title.endswith("."), f"{item.id}: the requirement is one sentence ending with '.'"
        assert item.spec and all(item.spec), f"{item.id} has no spec reference"
        assert re.fullmatch(r"[a-z][a-z0-9_]+", item.name), item.name
        assert isinstance(item.level, Level)


def test_every_must_check_says_why_a_break_matters() -> None:
    # Severity by impact: a MUST fails only where an attacker or a client can feel the break, and the
    # check's docstring says how (an "Impact:" paragraph after the requirement line).
    def says_why(doc: str | None) -> bool:
        return any(line.startswith("Impact: ") for line in inspect.cleandoc(doc or "").splitlines()[2:])

    assert [c.id for c in ALL if c.level is Level.MUST and not says_why(c.func.__doc__)] == []


def test_every_area_module_is_imported_and_ordered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(checks_package.__path__) if not m.name.startswith("_")}
    assert set(checks_package.AREAS) == modules
    assert {c.group for c in ALL} <= set(GROUP_ORDER)
    assert {c.group for c in ALL} == modules


def test_a_duplicate_id_is_refused() -> None:
    with pytest.raises(DuplicateCheckError, match="BASE-001"):
        check("BASE-001", level=Level.MUST, spec=["x"])(lambda ctx: None)
    assert REGISTRY["BASE-001"].name == "valid_token_reaches_the_me_endpoint"


def test_malformed_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="AREA-NNN"):
        check("base-1", level=Level.MUST, spec=["x"])(lambda ctx: None)


def test_select_by_id_or_prefix_and_skip() -> None:
    assert [c.id for c in select(ALL, ["BASE-002"])] == ["BASE-002"]
    assert {c.id for c in select(ALL, ["base"])} == {"BASE-001", "BASE-002", "BASE-003"}
    assert {c.id for c in select(ALL, ["BASE"], ["BASE-003"])} == {"BASE-001", "BASE-002"}
    assert select(ALL, ["NOPE"]) == []


def _ids(prefix: str, numbers: Iterable[int]) -> set[str]:
    return {f"{prefix}-{n:03d}" for n in numbers}


KEY_ASSISTED = _ids("JWT-CLM", range(1, 13)) | _ids("JWT-JWKS", range(1, 4)) | {"JWT-ALG-007"}
BLACK_BOX_CATALOG = (
    _ids("BASE", range(1, 4))
    | _ids("TOKEN", [*range(1, 21), 23])
    | _ids("JWT-FMT", range(1, 13))
    | _ids("JWT-SIG", [1, 2, 3, 4, 5, 6, 7, 8, 9])
    | _ids("JWT-ALG", [1, 2, 3, 4, 5, 6, 8, 9, 10])
    | _ids("JWT-HDR", range(1, 8))
    | _ids("BEARER", range(1, 15))
    | _ids("PROT", [1, 2, 3, 5, 6, 7, 8])
    | _ids("ENUM", [1, 2, 3])
    | _ids("RATE", [1, 2])
    | _ids("TLS", range(1, 4))
)
# Run when the target declares refresh tokens, revocation or scopes.
CAPABILITIES = {"TOKEN-022", "TOKEN-024", "PROT-004"} | _ids("REFRESH", range(1, 5)) | _ids("REVOKE", range(1, 6))
# Run in issuer mode: the suite is the issuer the API trusts.
ISSUER_MODE = _ids("ISS", range(1, 6))


def test_every_black_box_catalog_row_is_implemented_and_the_claim_checks() -> None:
    assert {c.id for c in ALL} == BLACK_BOX_CATALOG | KEY_ASSISTED | CAPABILITIES | ISSUER_MODE


def test_checks_are_listed_in_run_order() -> None:
    order = {group: index for index, group in enumerate(GROUP_ORDER)}
    positions = [order[c.group] for c in ALL]
    assert positions == sorted(positions)
    assert ALL[0].id == "BASE-001"


def test_levels_choose_the_expensive_checks() -> None:
    quick = {c.id for c in select(ALL, level="quick")}
    standard = {c.id for c in select(ALL, level="standard")}
    assert {"ENUM-002", "TOKEN-019", "BEARER-014"} <= standard - quick
    assert quick < standard < {c.id for c in select(ALL, level="thorough")}
    assert "JWT-SIG-007" not in standard
    assert all(c.cost in ("quick", "standard", "thorough") for c in ALL)


def test_the_public_api_exports_exist() -> None:
    import conformance

    assert sorted(conformance.__all__) == sorted(set(conformance.__all__))
    for name in conformance.__all__:
        assert hasattr(conformance, name), name
