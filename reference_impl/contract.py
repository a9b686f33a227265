"""Finds and loads ``openapi.yaml``: the contract this server implements (and serves verbatim)."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

CONTRACT_NAME = "openapi.yaml"


def contract_path() -> Path:
    """The packaged copy in an installed wheel; the repository's file in a source checkout."""
    packaged = resources.files(__package__).joinpath(CONTRACT_NAME)
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / CONTRACT_NAME


@functools.cache
def load_contract() -> dict[str, Any]:
    with contract_path().open(encoding="utf-8") as handle:
        document: dict[str, Any] = yaml.safe_load(handle)
    return document
