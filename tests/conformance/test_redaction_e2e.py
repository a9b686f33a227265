"""No usable credential in any report: every token the server issued during a full run, collected server side.

The reference app (keys given, second and disabled users, every capability it has) and the FastAPI-tutorial
server (its key cracked, ``--profile fastapi``) are run in-process with every check; the console output and
the JSON, JUnit, Markdown, HTML (as read, unescaped) and SARIF reports are then searched for each issued
access and refresh token, every 16-character piece of their signatures, the passwords and the keys; and
every JWT-shaped string left in a report must fail to verify with the server's key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conformance.cli import execute_run
from conformance.client import Client, Redactor
from conformance.config import Keys, RunConfig
from conformance.contract import load_contract
from conformance.model import Profile, Status
from conformance.registry import all_checks, select
from conformance.reporters.console import ConsoleReporter
from conformance.reporters.html_report import HtmlReporter
from conformance.reporters.json_report import JsonReporter
from conformance.reporters.junit import JunitReporter
from conformance.reporters.markdown import MarkdownReporter
from conformance.reporters.sarif import SarifReporter
from conformance.runner import run
from reference_impl.grants import GrantStore
from reference_impl.security import IssuedToken, Tokens

from . import tutorial_app as tutorial_module
from .harness import BASE_URL, config_for
from .token_twins import decode_without_signature, twin

JWT_SHAPED = re.compile(r"[A-Za-z0-9_\-+/]{4,}={0,2}\.[A-Za-z0-9_\-+/]{4,}={0,2}\.[A-Za-z0-9_\-+/]*={0,2}")
WINDOW = 16


@dataclass
class Issued:
    """What the server handed out during the run (recorded by the server itself)."""

    access: list[str] = field(default_factory=list)
    refresh: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        return [*self.access, *self.refresh]


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> Issued:
    """Every access token (``Tokens.issue``) and refresh token (``GrantStore._insert_token``) the server made."""
    record = Issued()
    issue, insert = Tokens.issue, GrantStore._insert_token

    def recording_issue(self: Tokens, *args: Any, **kwargs: Any) -> IssuedToken:
        token = issue(self, *args, **kwargs)
        record.access.append(token.token)
        return token

    def recording_insert(self: GrantStore, *args: Any, **kwargs: Any) -> str:
        token = insert(self, *args, **kwargs)
        record.refresh.append(token)
        return token

    monkeypatch.setattr(Tokens, "issue", recording_issue)
    monkeypatch.setattr(GrantStore, "_insert_token", recording_insert)
    return record


@dataclass
class Outputs:
    texts: dict[str, str]
    statuses: dict[str, Status]


def full_run(app: Any, config: RunConfig, tmp_path: Path) -> Outputs:
    """Every check up to ``thorough``, through the console and the five file reporters."""
    checks = select(all_checks(), (), level="thorough")
    console = io.StringIO()
    reporters = [
        ConsoleReporter(console, color=False, verbose=True),
        JsonReporter(tmp_path / "r.json"),
        JunitReporter(tmp_path / "r.xml"),
        MarkdownReporter(tmp_path / "r.md"),
        HtmlReporter(tmp_path / "r.html"),
        SarifReporter(tmp_path / "r.sarif"),
    ]
    statuses: dict[str, Status] = {}
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as http:
        client = Client(BASE_URL, http=http, redactor=Redactor(config.secrets))

        def results() -> Iterator[Any]:
            for result in run(config, checks, contract=load_contract(), client=client):
                statuses[result.id] = result.status
                yield result

        execute_run(config, reporters, results=results(), plan=checks)
    texts = {"console": console.getvalue()}
    texts |= {name: (tmp_path / name).read_text("utf-8") for name in ("r.json", "r.xml", "r.md", "r.sarif")}
    texts["r.html"] = html.unescape((tmp_path / "r.html").read_text("utf-8"))  # as the page reads
    return Outputs(texts, statuses)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verifies(token: str, key: bytes) -> bool:
    """True when ``token`` (any HMAC algorithm, whatever its header says) is signed with ``key``."""
    try:
        jwt.api_jws.PyJWS().decode(token, key, algorithms=["HS256", "HS384", "HS512"])
        return True
    except jwt.PyJWTError:
        pass
    head, _, signature = token.rpartition(".")
    return any(hmac.compare_digest(_b64url(hmac.new(key, head.encode(), h).digest()), signature) for h in HASHES)


HASHES = (hashlib.sha256, hashlib.sha384, hashlib.sha512)


def leaks(outputs: Outputs, tokens: list[str], secrets: list[str], key: bytes) -> list[str]:
    """Every credential found in an output, as ``output: what``."""
    found: list[str] = []
    for name, text in outputs.texts.items():
        for token in tokens:
            if token in text:
                found.append(f"{name}: issued token {token[:12]}...")
                continue
            signature = token.rsplit(".", 1)[-1]
            pieces = {signature[i : i + WINDOW] for i in range(len(signature) - WINDOW + 1)}
            hits = sum(piece in text for piece in pieces)
            if hits:
                found.append(f"{name}: {hits} 16-character pieces of the signature of {token[:12]}...")
        found += [f"{name}: a password or key" for secret in secrets if secret in text]
        found += [f"{name}: a token signed with the key" for m in JWT_SHAPED.findall(text) if verifies(m, key)]
    return found


def _unverified(tokens: Tokens, token: str) -> dict[str, Any] | None:
    """Accept any token whose claims decode, whatever its signature (every signature check then fails)."""
    try:
        return decode_without_signature(token)
    except jwt.PyJWTError:
        return None


@pytest.mark.parametrize("broken", [False, True], ids=["reference", "signatures-unchecked"])
def test_no_report_holds_a_credential_the_reference_server_issued(
    reference: FastAPI, issued: Issued, tmp_path: Path, broken: bool
) -> None:
    secret_key = reference.state.reference.settings.secret_key
    config = config_for(keys=Keys(hs_secret=secret_key), level="thorough")
    outputs = full_run(twin(reference, _unverified) if broken else reference, config, tmp_path)
    assert len(issued.access) > 10 and len(issued.refresh) > 3, "the run should have logged in many times"
    assert outputs.statuses["TOKEN-001"] is Status.PASS and outputs.statuses["JWT-CLM-001"] is not Status.SKIP
    skipped = sorted(i for i, s in outputs.statuses.items() if s is Status.SKIP and i.startswith(("REFRESH", "REVOKE")))
    assert skipped == ["REVOKE-005"], "refresh and revocation are exercised (the reference server has no logout)"
    assert (outputs.statuses["JWT-SIG-002"] is Status.FAIL) is broken
    secrets = [config.primary.password, config.second.password, config.disabled.password, secret_key]  # type: ignore[union-attr]
    found = leaks(outputs, issued.all, secrets, secret_key.encode())
    assert found == [], f"{len(found)} leaks:\n" + "\n".join(found)
    if broken:  # the evidence is kept, as placeholders with their recipes
        report = json.loads(outputs.texts["r.json"])
        forged = next(r for r in report["results"] if r["id"] == "JWT-SIG-002")["evidence"]["exchanges"][-1]
        assert forged["request"]["headers"][0][1].startswith("Bearer ${FORGED_TOKEN_")
        # JWT-SIG-002 sends the token cut short and with one bit forged; the first one accepted ends it.
        assert re.search(
            r"  # \$\{FORGED_TOKEN_\d+\} = built from \$\{ACCESS_TOKEN\}: header kept, claims kept, "
            r"signature (with 1 character\(s\) changed|cut to 39 of 43 characters)$",
            forged["curl"],
        ), forged["curl"]


def test_no_report_holds_a_credential_of_a_tutorial_server(tmp_path: Path) -> None:
    key = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"  # the tutorial's, so JWT-FMT-010 cracks it
    tokens: list[str] = []
    encode = jwt.encode

    def recording_encode(*args: Any, **kwargs: Any) -> str:
        token = encode(*args, **kwargs)
        tokens.append(token)
        return token

    app = tutorial_module.tutorial_app(secret_key=key)
    config = config_for(profile=Profile.FASTAPI, level="thorough")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tutorial_module.jwt, "encode", recording_encode)
        outputs = full_run(app, config, tmp_path)
    assert len(tokens) > 5
    assert outputs.statuses["JWT-FMT-010"] is Status.FAIL
    secrets = [config.primary.password, config.second.password, config.disabled.password, key]  # type: ignore[union-attr]
    found = leaks(outputs, tokens, secrets, key.encode())
    assert found == [], f"{len(found)} leaks:\n" + "\n".join(found)
