"""Issuer mode: the suite as the issuer an API trusts (``run --issuer-keys DIR``), against real resource servers.

A real ``jwt-conformance issuer`` process serves discovery and the JWK Set; the resource servers fetch
it over real HTTP. The in-process twins (``issuer_twins.py``) are PyJWT resource servers, correct or
broken in exactly one way; the end-to-end test runs the CLI against a real ``jwt-reference serve``
configured to trust the issuer.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.checks.token_format import MINTED
from conformance.config import IssuerMode, build_config
from conformance.context import NO_ISSUER_MODE, NO_TOKEN_ENDPOINT_IN_ISSUER_MODE
from conformance.errors import ConfigError
from conformance.issuer import read_state
from conformance.issuer_mode import IssuerUnavailableError
from conformance.model import Status

from ..server_process import Server, server_env, stop_process
from .harness import explain, run_checks
from .issuer_twins import resource_server
from .test_issuer import Issuer

JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"
JWT_REFERENCE = Path(sys.executable).parent / "jwt-reference"
AUDIENCE = "https://api.example.test"
USERS = {"johndoe", "carol"}
REFRESH_WAIT_S, REMOVAL_WAIT_S = 8.0, 8.0  # the twins and the reference server cache keys for 3 s
ISS = [f"ISS-{n:03d}" for n in range(1, 6)]


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    root = tmp_path_factory.mktemp("issuer")
    running = Issuer(root / "keys", root).wait_ready()
    yield running
    stop_process(running.process)


def mode(issuer: Issuer, **changes: Any) -> IssuerMode:
    fields: dict[str, Any] = {
        "keys_dir": Path(issuer.keys_dir),
        "url": issuer.issuer,
        "endpoint": f"http://127.0.0.1:{issuer.port}",
        "audience": AUDIENCE,
        "subject": "johndoe",
        "second_subject": "carol",
        "key_refresh_wait_s": REFRESH_WAIT_S,
        "key_removal_wait_s": REMOVAL_WAIT_S,
        **changes,
    }
    return IssuerMode(**fields)


def issuer_run(app: Any, issuer: Issuer, select: list[str], **changes: Any) -> dict[str, Any]:
    chosen = mode(issuer)
    given: dict[str, Any] = {
        "primary": None,
        "second": None,
        "disabled": None,
        "issuer_mode": chosen,
        "issuer": chosen.url,
        "audience": chosen.audience,
        "max_wait_s": 60.0,
        **changes,
    }
    return run_checks(app, select, contract=None, **given)


def twin(issuer: Issuer, defect: str | None = None) -> Any:
    return resource_server(
        issuer=issuer.issuer, endpoint=f"http://127.0.0.1:{issuer.port}", audience=AUDIENCE, users=USERS, defect=defect
    )


# -- the ISS checks: pass on a correct resource server, fail with their own ID on its twin -------------------


def test_a_correct_resource_server_passes_every_issuer_check_and_the_minted_claim_checks(issuer: Issuer) -> None:
    results = issuer_run(twin(issuer), issuer, [*ISS, "JWT-CLM", "JWT-ALG", "JWT-HDR", "BEARER-001", "PROT-002"])
    failing = {check_id: r.status for check_id, r in results.items() if r.status in (Status.FAIL, Status.WARN)}
    # PyJWT takes an exp sent as a numeric string (still enforcing it): its one departure, as in the corpus.
    assert failing == {"JWT-CLM-005": Status.WARN}, explain(results)
    for check_id in (*ISS, "JWT-CLM-002", "JWT-CLM-004", "JWT-CLM-010", "JWT-CLM-011", "JWT-ALG-006", "JWT-ALG-007"):
        assert results[check_id].status is Status.PASS, explain(results)
    assert results["PROT-002"].message == "each user gets their own record (johndoe, carol)"
    assert results["JWT-ALG-006"].message == "refused RS384, RS512, PS256"


@pytest.mark.parametrize(
    ("defect", "check_id", "status"),
    [
        ("unverified", "ISS-001", Status.FAIL),
        ("optional_iss_aud", "ISS-002", Status.FAIL),
        ("never_refresh", "ISS-003", Status.WARN),
        ("never_refresh", "ISS-004", Status.FAIL),
        ("never_forget", "ISS-004", Status.FAIL),
        ("storm", "ISS-005", Status.WARN),
    ],
)
def test_each_issuer_check_fails_on_the_twin_broken_its_way(
    issuer: Issuer, defect: str, check_id: str, status: Status
) -> None:
    results = issuer_run(twin(issuer, defect), issuer, [check_id])
    assert results[check_id].status is status, explain(results)


def test_the_never_refreshing_twin_fails_both_ways(issuer: Issuer) -> None:
    """It never accepts a new key (ISS-003), and keeps the spare it loaded at start after its removal (ISS-004)."""
    results = issuer_run(twin(issuer, "never_refresh"), issuer, ["ISS-003", "ISS-004"])
    assert (results["ISS-003"].status, results["ISS-004"].status) == (Status.WARN, Status.FAIL), explain(results)


def test_the_probe_key_leaves_the_keys_directory_and_a_new_spare_replaces_the_removed_one(issuer: Issuer) -> None:
    keys_dir = Path(issuer.keys_dir)
    before = read_state(keys_dir)
    (spare,) = [key for key in before.keys if key.status == "spare"]
    results = issuer_run(twin(issuer), issuer, ["ISS-003", "ISS-004"])
    assert {r.status for r in results.values()} == {Status.PASS}, explain(results)
    after = read_state(keys_dir)
    assert {key.kid for key in after.keys if key.status == "probe"} == set()
    assert after.entry(spare.kid) is not None and after.entry(spare.kid).status == "retired"  # type: ignore[union-attr]
    (new_spare,) = [key for key in after.keys if key.status == "spare"]
    assert issuer.kids() == {key.kid for key in after.published()} and new_spare.kid in issuer.kids()
    assert spare.kid not in issuer.kids()


def test_an_api_that_ignores_aud_fails_the_audience_check_once_not_twice(issuer: Issuer) -> None:
    """One defect, one verdict: JWT-CLM-011 (another audience accepted) owns it; ISS-002 still judges iss."""
    results = issuer_run(twin(issuer, "ignores_aud"), issuer, ["ISS-002", "JWT-CLM-011"])
    assert (results["JWT-CLM-011"].status, results["ISS-002"].status) == (Status.FAIL, Status.PASS), explain(results)
    assert results["ISS-002"].message == "aud not checked at all: see JWT-CLM-010/011"


def test_an_unknown_sub_is_judged_only_where_the_api_maps_sub_to_its_users(issuer: Issuer) -> None:
    """A resource server may serve the issuer's identity with no user list: JWT-CLM-007 skips unless told."""
    open_api = resource_server(
        issuer=issuer.issuer, endpoint=f"http://127.0.0.1:{issuer.port}", audience=AUDIENCE, users=None
    )
    results = issuer_run(open_api, issuer, ["JWT-CLM-007", "JWT-CLM-008"])
    assert results["JWT-CLM-007"].status is Status.SKIP, explain(results)
    assert "issuer.local_users: true" in results["JWT-CLM-007"].message
    # PyJWT refuses a non-string sub and takes a 10 KB one: signed by the trusted issuer, that is noted.
    assert results["JWT-CLM-008"].status is Status.INFO, explain(results)
    noted = "tokens of the trusted issuer whose sub is 10 KB long are accepted"
    assert results["JWT-CLM-008"].message.startswith(noted)
    local = issuer_run(twin(issuer), issuer, ["JWT-CLM-007", "JWT-CLM-008"], issuer_mode=mode(issuer, local_users=True))
    assert local["JWT-CLM-007"].status is Status.PASS, explain(local)  # the twin refuses subjects not in USERS
    assert local["JWT-CLM-008"].status is Status.PASS, explain(local)


def test_waits_longer_than_max_wait_skip_with_the_way_out(issuer: Issuer) -> None:
    results = issuer_run(twin(issuer), issuer, ["ISS-003", "ISS-004"], max_wait_s=5.0)
    assert results["ISS-003"].status is results["ISS-004"].status is Status.SKIP
    assert results["ISS-003"].message.startswith("the API may take up to 8 s (issuer.key_refresh_wait) to accept")
    assert results["ISS-004"].message.startswith("the API may take up to 8 s (issuer.key_removal_wait) to drop")


def test_by_default_the_removal_wait_covers_common_key_caches_and_needs_a_longer_max_wait(issuer: Issuer) -> None:
    """Defaults: 60 s to accept a new key (ISS-003 runs), 600 s to drop a removed one (ISS-004 skips at 120 s)."""
    config = build_config(
        {"base_url": "http://127.0.0.1:1", "issuer_keys": issuer.keys_dir, "audience": AUDIENCE}, env={}
    )
    assert config.issuer_mode is not None
    assert (config.issuer_mode.key_refresh_wait_s, config.issuer_mode.key_removal_wait_s) == (60.0, 600.0)
    assert config.max_wait_s == 120.0


def test_outside_issuer_mode_the_issuer_checks_skip_with_the_way_out(reference: Any) -> None:
    results = run_checks(reference, ISS)
    assert {r.status for r in results.values()} == {Status.SKIP}
    assert {r.message for r in results.values()} == {NO_ISSUER_MODE}


def test_password_grant_checks_skip_saying_issuer_mode_tests_verification_only(issuer: Issuer) -> None:
    results = issuer_run(twin(issuer), issuer, ["TOKEN-001", "PROT-003", "ENUM-001"])
    assert {r.message for r in results.values()} == {NO_TOKEN_ENDPOINT_IN_ISSUER_MODE}


def test_the_format_checks_do_not_judge_the_suites_own_tokens(issuer: Issuer) -> None:
    results = issuer_run(twin(issuer), issuer, ["JWT-FMT"])
    assert {check_id for check_id, r in results.items() if r.message == MINTED} == set(MINTED_FORMAT)


def test_a_stopped_issuer_stops_the_run_with_the_way_out(tmp_path: Path, issuer: Issuer) -> None:
    stopped = Issuer(tmp_path / "keys", tmp_path).wait_ready()
    stop_process(stopped.process)
    chosen = mode(stopped)
    with pytest.raises(IssuerUnavailableError, match="does not answer at .*: start `jwt-conformance issuer"):
        run_checks(twin(issuer), ["BASE-001"], primary=None, issuer_mode=chosen, audience=AUDIENCE)


# -- configuration ---------------------------------------------------------------------------------------------


def test_the_issuer_is_found_through_its_keys_directory(issuer: Issuer) -> None:
    config = build_config(
        {"base_url": "http://127.0.0.1:1", "issuer_keys": issuer.keys_dir, "audience": AUDIENCE}, env={}
    )
    assert config.issuer_mode is not None and config.token_run
    assert (config.issuer_mode.url, config.issuer_mode.endpoint) == (issuer.issuer, f"http://127.0.0.1:{issuer.port}")
    assert (config.issuer, config.audience) == (issuer.issuer, AUDIENCE)  # JWT-FMT-011 then requires both
    assert config.issuer_mode.subject == "jwt-conformance-user"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"audience": None}, "issuer mode needs the audience the API accepts: pass --audience AUD"),
        ({"token": "abc.def.ghi"}, "issuer mode mints its own tokens: drop --token"),
        ({"issuer_keys": None, "subject": "x"}, "--subject, --second-subject and --scope belong to issuer mode"),
        ({"issuer_keys": "/nonexistent/keys"}, "--issuer-keys /nonexistent/keys: "),
    ],
)
def test_issuer_mode_configuration_errors_name_the_fix(issuer: Issuer, flags: dict[str, Any], message: str) -> None:
    given = {"base_url": "http://127.0.0.1:1", "issuer_keys": issuer.keys_dir, "audience": AUDIENCE, **flags}
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        build_config(given, env={})


# -- end to end: the CLI against a real reference server that trusts the issuer -------------------------------


@pytest.fixture
def trusting_reference(tmp_path: Path, issuer: Issuer) -> Iterator[Server]:
    """``jwt-reference serve --demo-users`` trusting the issuer (short key-cache times), plus a second user carol."""
    env = server_env(tmp_path / "users.db", secrets.token_urlsafe(48))
    env["JWT_REF_TRUSTED_ISSUERS"] = json.dumps([{"issuer": issuer.issuer, "audience": AUDIENCE}])
    env["JWT_REF_JWKS_REFRESH_INTERVAL"], env["JWT_REF_JWKS_MAX_AGE"] = "1", "3"
    add = subprocess.run(
        [str(JWT_REFERENCE), "users", "add", "carol", "--password-stdin"],
        input=b"carol's own password\n",
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert add.returncode == 0, add.stderr
    server = Server(env, ("--demo-users",), tmp_path / "server.log")
    try:
        yield server.wait_ready()
    finally:
        server.stop()


# Skipped in issuer mode against the reference server: its own token endpoint and what needs it, plain http,
# HS256-only and logout checks that do not apply, and the password grant's key checks.
PASSWORD_GRANT = frozenset(
    {f"TOKEN-{n:03d}" for n in (*range(1, 21), 22, 23)}
    | {"ENUM-001", "ENUM-002", "ENUM-003", "RATE-001", "RATE-002", "PROT-003", "JWT-FMT-012"}
    | {"REFRESH-001", "REFRESH-002", "REFRESH-003", "REFRESH-004", "REVOKE-001", "REVOKE-003", "REVOKE-004"}
)
NOT_APPLICABLE = frozenset(
    {
        "TLS-002",  # not https
        "TLS-003",
        "JWT-SIG-009",  # RS256 tokens: the ES256 check does not apply
        "REVOKE-005",  # no logout endpoint
        "TOKEN-024",  # every scope the issuer grants is the user's already
    }
)


# The format checks judge a token the suite minted itself: they skip, saying so.
MINTED_FORMAT = frozenset(f"JWT-FMT-{n:03d}" for n in range(1, 12))


def test_cli_issuer_mode_on_the_reference_server_passes_and_shows_no_credential(
    tmp_path: Path, issuer: Issuer, trusting_reference: Server
) -> None:
    state_before = read_state(Path(issuer.keys_dir))
    config = tmp_path / "conformance.yaml"
    config.write_text(  # the reference server maps sub to its users: an unknown sub must be refused (JWT-CLM-007)
        f"issuer:\n  key_refresh_wait: {REFRESH_WAIT_S}\n  key_removal_wait: {REMOVAL_WAIT_S}\n"
        "  second_subject: carol\n  local_users: true\n"
    )
    report, junit = tmp_path / "report.json", tmp_path / "report.xml"
    done = subprocess.run(
        [
            str(JWT_CONFORMANCE),
            "run",
            "--config",
            str(config),
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
            "--json-report",
            str(report),
            "--junit-report",
            str(junit),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    document = json.loads(report.read_text())
    assert document["notes"][-1] == (
        f"issuer mode: every token was minted as the issuer {issuer.issuer} for sub 'johndoe', "
        f"audience '{AUDIENCE}', scope 'me items:read'"
    )
    statuses = {item["id"]: item["status"] for item in document["results"]}
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    skipped = {check_id for check_id, status in statuses.items() if status == "skip"}
    assert skipped == PASSWORD_GRANT | NOT_APPLICABLE | MINTED_FORMAT
    assert set(statuses.values()) - {"skip"} <= {"pass", "info"}, done.stdout[-3000:]
    key_assisted = [f"JWT-CLM-{n:03d}" for n in range(1, 13) if n not in (5, 9)] + ["JWT-ALG-006", "JWT-ALG-007"]
    assert statuses["JWT-CLM-005"] == "info"  # exp 1e20 ("never") is accepted: valid, noted
    not_passed = {i: statuses[i] for i in [*ISS, *key_assisted, "PROT-002", "PROT-004"] if statuses[i] != "pass"}
    assert not_passed == {}
    # No minted token, signature piece or key in any output; the probe key is gone again.
    outputs = done.stdout + done.stderr + report.read_text() + junit.read_text()
    for pem in Path(issuer.keys_dir).glob("*.pem"):
        body = "".join(pem.read_text().splitlines()[1:-1])
        assert body[:40] not in outputs
    assert "eyJ" not in outputs.replace("${", "")  # no compact JWS survives redaction
    after = read_state(Path(issuer.keys_dir))
    assert after.signer == state_before.signer and not [key for key in after.keys if key.status == "probe"]


def test_the_issuer_takes_out_probe_keys_a_killed_run_left(tmp_path: Path) -> None:
    from conformance.issuer.keys import add_probe_key, ensure_keys

    keys_dir = tmp_path / "keys"
    ensure_keys(keys_dir)
    left = add_probe_key(keys_dir, "RS256")
    assert (keys_dir / f"{left.kid}.pem").exists()
    started = Issuer(keys_dir, tmp_path).wait_ready()
    try:
        assert started.kids() == {key.kid for key in read_state(keys_dir).published()}
        assert left.kid not in started.kids()
        assert read_state(keys_dir).entry(left.kid) is None and not (keys_dir / f"{left.kid}.pem").exists()
    finally:
        stop_process(started.process)
