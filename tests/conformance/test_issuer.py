"""``jwt-conformance issuer``: a real process on 127.0.0.1 serving discovery and the JWK Set of its keys dir."""

from __future__ import annotations

import base64
import json
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest

from conformance.issuer import STATE_FILE, IssuerError, ensure_keys, mint, read_state, rotate
from conformance.issuer.keys import LOCK_FILE
from conformance.issuer.serve import start

from ..server_process import stop_process

pytestmark = pytest.mark.e2e

JWT_CONFORMANCE = Path(sys.executable).parent / "jwt-conformance"
ALGS = ("RS256", "ES256", "EdDSA")
PUBLIC_MEMBERS = {
    "RSA": {"kty", "n", "e", "kid", "alg", "use"},
    "EC": {"kty", "crv", "x", "y", "kid", "alg", "use"},
    "OKP": {"kty", "crv", "x", "kid", "alg", "use"},
}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
BANNER = re.compile(
    r"^issuer:\s+(\S+)\njwks_uri:\s+(\S+)\n(?:.*\n)*?listening:\s+http://127\.0\.0\.1:(\d+)\n", re.MULTILINE
)


class Issuer:
    """One ``jwt-conformance issuer`` process; stdout and stderr go to log files; stopped by PID."""

    def __init__(self, keys_dir: Path, log_dir: Path, *args: str) -> None:
        self.out, self.err = (
            log_dir / f"issuer-{time.monotonic_ns()}.out",
            log_dir / f"issuer-{time.monotonic_ns()}.err",
        )
        command = [str(JWT_CONFORMANCE), "issuer", "--port", "0", "--keys-dir", str(keys_dir), *args]
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.keys_dir = keys_dir
        self.issuer = self.jwks_uri = ""
        self.port = 0

    def wait_ready(self) -> Issuer:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the issuer exited with {self.process.returncode}: {self.err.read_text()}")
            if match := BANNER.search(self.out.read_text()):
                self.issuer, self.jwks_uri, port = match.groups()
                self.port = int(port)
                return self
            time.sleep(0.05)
        pytest.fail("the issuer did not print its banner")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.port}{path}", timeout=5, trust_env=False)

    def jwks(self) -> dict[str, Any]:
        data: dict[str, Any] = self.get("/.well-known/jwks.json").json()
        return data

    def kids(self) -> set[str]:
        return {key["kid"] for key in self.jwks()["keys"]}


@pytest.fixture
def start_issuer(tmp_path: Path) -> Iterator[Any]:
    issuers: list[Issuer] = []

    def launch(keys_dir: Path, *args: str) -> Issuer:
        issuer = Issuer(keys_dir, tmp_path, *args)
        issuers.append(issuer)
        return issuer.wait_ready()

    yield launch
    for issuer in issuers:
        stop_process(issuer.process)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(JWT_CONFORMANCE), *args], capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


def rotate_cli(keys_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = cli("issuer", "rotate", "--keys-dir", str(keys_dir), *args)
    assert done.returncode == 0, done.stderr
    return done


def verify(token: str, jwks_uri: str) -> dict[str, Any]:
    """Verify like an API would: the key named by ``kid`` from the served JWK Set, with PyJWT."""
    key = jwt.PyJWKClient(jwks_uri, cache_keys=False, cache_jwk_set=False).get_signing_key_from_jwt(token)
    claims: dict[str, Any] = jwt.decode(token, key, algorithms=[key.algorithm_name], audience="api", issuer="iss-x")
    return claims


def claims() -> dict[str, Any]:
    now = int(time.time())
    return {"iss": "iss-x", "sub": "alice", "aud": "api", "iat": now, "exp": now + 300}


def header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return data


def test_it_serves_discovery_and_a_public_jwks_of_three_algorithms_and_a_spare(
    tmp_path: Path, start_issuer: Any
) -> None:
    issuer = start_issuer(tmp_path / "keys")
    assert issuer.issuer == f"http://127.0.0.1:{issuer.port}"
    assert issuer.jwks_uri == f"{issuer.issuer}/.well-known/jwks.json"
    assert f"example:   JWT_ISSUER={issuer.issuer} JWT_JWKS_URL={issuer.jwks_uri}" in issuer.out.read_text()
    discovery = issuer.get("/.well-known/openid-configuration")
    assert discovery.status_code == 200
    assert discovery.headers["content-type"] == "application/json"
    document = discovery.json()
    assert document["issuer"] == issuer.issuer
    assert document["jwks_uri"] == issuer.jwks_uri
    assert document["id_token_signing_alg_values_supported"] == ["ES256", "EdDSA", "RS256"]
    assert document["subject_types_supported"] == ["public"]
    keys = issuer.jwks()["keys"]
    assert sorted(key["alg"] for key in keys) == sorted([*ALGS, "RS256"])  # the spare has the signer's alg
    assert len({key["kid"] for key in keys}) == 4
    for key in keys:
        assert set(key) == PUBLIC_MEMBERS[key["kty"]], key["kty"]
        assert not PRIVATE_MEMBERS & set(key)
        assert key["use"] == "sig"
    state = read_state(tmp_path / "keys")
    assert {key["kid"] for key in keys} == {entry.kid for entry in state.keys}
    assert state.entry(state.signer) is not None and state.entry(state.signer).alg == "RS256"  # type: ignore[union-attr]
    assert issuer.get("/nothing").status_code == 404


def test_the_issuer_url_flag_is_what_discovery_publishes(tmp_path: Path, start_issuer: Any) -> None:
    issuer = start_issuer(tmp_path / "keys", "--issuer", "http://issuer.test:9999/")
    assert issuer.issuer == "http://issuer.test:9999"
    document = issuer.get("/.well-known/openid-configuration").json()
    assert document["issuer"] == "http://issuer.test:9999"
    assert document["jwks_uri"] == "http://issuer.test:9999/.well-known/jwks.json"


def test_it_binds_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    server = start(tmp_path / "keys", port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()


def test_keys_and_state_are_private_files(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    state = ensure_keys(keys_dir)
    assert stat.S_IMODE(keys_dir.stat().st_mode) == 0o700
    files = sorted(path.name for path in keys_dir.iterdir())
    assert files == sorted([STATE_FILE, LOCK_FILE, *(f"{entry.kid}.pem" for entry in state.keys)])
    for path in keys_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    rotate(keys_dir)
    for path in keys_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_keys_persist_across_restarts(tmp_path: Path, start_issuer: Any) -> None:
    first = start_issuer(tmp_path / "keys")
    kids = first.kids()
    stop_process(first.process)
    second = start_issuer(tmp_path / "keys")
    assert second.kids() == kids


@pytest.mark.parametrize("alg", ALGS)
def test_a_minted_token_verifies_against_the_served_jwks(tmp_path: Path, start_issuer: Any, alg: str) -> None:
    keys_dir = tmp_path / "keys"
    issuer = start_issuer(keys_dir)
    token = mint(keys_dir, claims(), alg=alg)
    active = read_state(keys_dir).active(alg)
    assert active is not None
    assert header(token) == {"alg": alg, "typ": "JWT", "kid": active.kid}
    assert verify(token, issuer.jwks_uri)["sub"] == "alice"
    head, payload, signature = token.split(".")
    tampered = f"{head}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{signature}"
    with pytest.raises(jwt.InvalidTokenError):
        verify(tampered, issuer.jwks_uri)


def test_mint_defaults_to_the_signer_and_takes_header_overrides(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    state = ensure_keys(keys_dir)
    assert header(mint(keys_dir, {"sub": "a"})) == {"alg": "RS256", "typ": "JWT", "kid": state.signer}
    token = mint(keys_dir, {"sub": "a"}, alg="ES256", headers={"typ": "at+jwt", "kid": None, "x": 1})
    assert header(token) == {"alg": "ES256", "typ": "at+jwt", "x": 1}
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 64  # raw r || s, not DER
    with pytest.raises(IssuerError, match="no key with kid nope"):
        mint(keys_dir, {}, kid="nope")
    with pytest.raises(IssuerError, match=f"key {state.signer} is an RS256 key, not ES256"):
        mint(keys_dir, {}, kid=state.signer, alg="ES256")


def test_a_running_issuer_publishes_a_rotation_and_retire_removes_the_old_key(
    tmp_path: Path, start_issuer: Any
) -> None:
    keys_dir = tmp_path / "keys"
    issuer = start_issuer(keys_dir)
    before = read_state(keys_dir)
    old_signer = before.signer
    old_token = mint(keys_dir, claims())
    done = rotate_cli(keys_dir)
    after = read_state(keys_dir)
    assert after.signer not in {entry.kid for entry in before.keys}
    assert done.stdout.splitlines() == [f"signer: RS256 {after.signer}", f"rotated-out: RS256 {old_signer}"]
    assert issuer.kids() == {entry.kid for entry in before.keys} | {after.signer}
    assert header(mint(keys_dir, claims()))["kid"] == after.signer
    assert verify(mint(keys_dir, claims()), issuer.jwks_uri)["sub"] == "alice"
    assert verify(old_token, issuer.jwks_uri)["sub"] == "alice"  # still published in its grace period
    assert after.entry(old_signer).status == "rotated-out"  # type: ignore[union-attr]

    es_before = before.active("ES256")
    assert es_before is not None
    done = rotate_cli(keys_dir, "--alg", "ES256", "--retire")
    final = read_state(keys_dir)
    assert done.stdout.splitlines() == [
        f"signer: ES256 {final.signer}",
        f"retired: RS256 {old_signer}",
        f"retired: ES256 {es_before.kid}",
    ]
    es_now = final.active("ES256")
    assert es_now is not None and final.signer == es_now.kid
    assert final.entry(old_signer).status == "retired"  # type: ignore[union-attr]
    assert final.entry(es_before.kid).status == "retired"  # type: ignore[union-attr]
    kids = issuer.kids()
    assert old_signer not in kids and es_before.kid not in kids
    assert kids == {entry.kid for entry in final.keys if entry.status in ("published", "spare")}
    assert len(kids) == 4  # the new RS256 and ES256 keys, the EdDSA key, the spare
    with pytest.raises(jwt.PyJWKClientError):
        verify(old_token, issuer.jwks_uri)
    # a retired key still signs on request: the token names a kid the JWK Set no longer has
    assert header(mint(keys_dir, claims(), kid=old_signer))["kid"] == old_signer


def test_a_rotated_out_key_leaves_the_set_when_its_grace_period_ends(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    state = ensure_keys(keys_dir)
    new_state, new, replaced = rotate(keys_dir, "EdDSA", grace_s=60)
    old = state.active("EdDSA")
    assert old is not None and [key.kid for key in replaced] == [old.kid]
    now = time.time()
    assert old.kid in {key.kid for key in new_state.published(now)}
    assert old.kid not in {key.kid for key in new_state.published(now + 61)}
    assert new.kid in {key.kid for key in new_state.published(now + 61)}


def test_a_corrupted_state_file_while_serving_keeps_the_last_good_keys(tmp_path: Path, start_issuer: Any) -> None:
    keys_dir = tmp_path / "keys"
    issuer = start_issuer(keys_dir)
    kids = issuer.kids()
    (keys_dir / STATE_FILE).write_text("{not json")
    assert issuer.kids() == kids
    assert "warning: keeping the previous keys: the issuer state file" in issuer.err.read_text()


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_a_keys_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    line = one_error_line(cli("issuer", "--port", "0", "--keys-dir", str(path)))
    assert line.startswith(f"error: --keys-dir {path} ")
    assert "pass a directory this user can write" in line


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        line = one_error_line(cli("issuer", "--port", str(port), "--keys-dir", str(tmp_path / "keys")))
    assert line == f"error: port {port} on 127.0.0.1 is in use: stop what holds it or pick another --port"


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not JSON"),
        ('{"version": 1, "signer": "x", "keys": []}', "the signer is not a published key"),
        ('{"version": 7, "keys": []}', "not a version 1 state object"),
    ],
)
def test_a_corrupt_state_file_is_refused(tmp_path: Path, content: str, why: str) -> None:
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    (keys_dir / STATE_FILE).write_text(content)
    for args in (
        ("issuer", "--port", "0", "--keys-dir", str(keys_dir)),
        ("issuer", "rotate", "--keys-dir", str(keys_dir)),
    ):
        line = one_error_line(cli(*args))
        assert line == (
            f"error: the issuer state file {keys_dir / STATE_FILE} is unusable ({why}): restore it, "
            "or point --keys-dir at an empty directory to start with new keys"
        )


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    state = ensure_keys(keys_dir)
    (keys_dir / f"{state.signer}.pem").unlink()
    line = one_error_line(cli("issuer", "--port", "0", "--keys-dir", str(keys_dir)))
    assert f"(the private key file {state.signer}.pem is missing)" in line


def test_rotate_needs_existing_keys_and_serve_needs_a_keys_dir(tmp_path: Path) -> None:
    line = one_error_line(cli("issuer", "rotate", "--keys-dir", str(tmp_path / "none")))
    assert line == (
        f"error: no issuer keys in {tmp_path / 'none'}: start `jwt-conformance issuer --keys-dir "
        f"{tmp_path / 'none'}` once to create them"
    )
    assert one_error_line(cli("issuer", "--port", "0")).startswith("error: --keys-dir is required")
