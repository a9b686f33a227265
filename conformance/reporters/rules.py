"""What the HTML and SARIF reports say of a check beyond its result: its area and its name."""

from __future__ import annotations

from ..registry import GROUP_ORDER, REGISTRY, Check, all_checks


def _known(check_id: str) -> Check | None:
    if not REGISTRY:
        all_checks()  # importing the checks registers them
    return REGISTRY.get(check_id)


def area_of(check_id: str) -> str:
    """The area (``checks/<area>.py``) of a check; for an ID this version does not know, its prefix."""
    check = _known(check_id)
    return check.group if check is not None else check_id.rsplit("-", 1)[0].lower()


def area_order(area: str) -> tuple[int, str]:
    """Sort key: the areas in the order they run, unknown areas last."""
    return (GROUP_ORDER.index(area) if area in GROUP_ORDER else len(GROUP_ORDER), area)


def area_label(area: str) -> str:
    return area.replace("_", " ")


def rule_name(check_id: str) -> str:
    """A check's name in PascalCase (``alg_none_refused`` → ``AlgNoneRefused``); its ID when unknown."""
    check = _known(check_id)
    if check is None:
        return check_id
    return "".join(part[:1].upper() + part[1:] for part in check.name.split("_") if part)
