"""The kit's pytest entry point: ``pytest --jwt-conformance CONFIG.yaml`` runs the suite's checks as test items.

Deliberately tiny: without the option nothing of the kit is imported and no hook does anything, so a
session that does not ask for the suite runs as if the kit were not installed (the option shows in
``pytest --help``). The items, the lazy run and ``run_suite`` live in ``conformance.pytest_plugin``.
"""

from __future__ import annotations

import pytest

OPTION = "--jwt-conformance"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("jwt-conformance", "JWT conformance suite")
    group.addoption(
        OPTION,
        metavar="CONFIG",
        dest="jwt_conformance",
        default=None,
        help="Run the jwt-conformance checks against the target of this config file (YAML), one test item per "
        "check (CONFIG::CHECK-ID); -k selects checks by ID or area.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("jwt_conformance"):
        from conformance.pytest_plugin import activate

        activate(config)
