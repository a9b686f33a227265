"""What the kit ships for ``schemathesis run`` itself: the hooks module and ``examples/schemathesis.toml``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from conformance.config import PASSWORD_ENV
from conformance.fuzzing.hooks import USERNAME_ENV

from ..harness import PRIMARY
from . import twins
from .live import serving

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[3]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
TOML = ROOT / "examples" / "schemathesis.toml"
CONTRACT = ROOT / "openapi.yaml"


def schemathesis(
    base_url: str, cwd: Path, *run_options: str, toml: bool = False, hooks: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEMATHESIS", "JWT_"))}
    env.update({USERNAME_ENV: PRIMARY.username, PASSWORD_ENV: PRIMARY.password, "NO_COLOR": "1"})
    if hooks:
        env["SCHEMATHESIS_HOOKS"] = "conformance.fuzzing.hooks"
    command = [str(SCHEMATHESIS), *(("--config-file", str(TOML)) if toml else ()), "run", str(CONTRACT)]
    command += ["--url", base_url, "--max-examples", "20", "--seed", "11", "--no-color", *run_options]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_example_toml_logs_in_through_the_form_token_endpoint(reference: FastAPI, tmp_path: Path) -> None:
    with serving(reference) as base_url:
        clean = schemathesis(base_url, tmp_path, toml=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    cases = clean.stdout.split("Test cases:")[-1].splitlines()[1]
    assert re.search(r"\d+ generated, \d+ passed", cases) and "failed" not in cases, cases


def test_the_example_toml_catches_an_operation_served_without_a_token(reference: FastAPI, tmp_path: Path) -> None:
    with serving(twins.serves_without_token(reference)) as base_url:
        result = schemathesis(base_url, tmp_path, toml=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "API accepts requests without authentication" in result.stdout


def test_the_hooks_module_brings_the_password_flow_and_the_malformed_tokens(reference: FastAPI, tmp_path: Path) -> None:
    with serving(reference) as base_url:
        clean = schemathesis(base_url, tmp_path, "--checks", "all", "--mode", "all", hooks=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    with serving(twins.ignores_signature(reference)) as base_url:
        broken = schemathesis(base_url, tmp_path, "--checks", "all", "--mode", "all", hooks=True)
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "Bearer token never issued by the server was accepted" in broken.stdout
    assert PRIMARY.password not in broken.stdout
