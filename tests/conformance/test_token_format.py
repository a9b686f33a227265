"""JWT-FMT-*: pass against the reference server; each check fails against a twin that issues a token breaking its rule.

The twins are one tiny server (``token_server``) that issues whatever token a test builds and serves
``/users/me`` to any token it issued, so that the baseline passes and only the token's format differs.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from conformance.checks.token_format import weak_secrets
from conformance.config import Keys
from conformance.forge import HMAC_DIGESTS, b64url_encode, encode_json, hmac_sign, make_hs, unsigned

from .harness import DISABLED, PRIMARY, SECOND, Profile, Status, explain, run_checks
from .tutorial_app import tutorial_app

FMT = "JWT-FMT"
FMT_IDS = [f"JWT-FMT-{n:03d}" for n in range(1, 13)]
STRONG_KEY = secrets.token_bytes(32)
HEADER = {"alg": "HS256", "typ": "at+jwt"}
FASTAPI_DOCS_KEY = "09d25e094faa6ca2556c818166b7a9563b93f7099f6f0f4caa6cf63b88e8d3e7"

Issue = Callable[[str], str]


def good_claims(username: str) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "twin",
        "sub": username,
        "aud": "twin-api",
        "exp": now + 900,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }


def signed(
    header: dict[str, Any] | None = None,
    change: Callable[[dict[str, Any]], object] | None = None,
    key: bytes = STRONG_KEY,
) -> Issue:
    """Tokens with the reference's shape, the header replaced and the claims edited by ``change``."""

    def issue(username: str) -> str:
        claims = good_claims(username)
        if change is not None:
            change(claims)
        head = header or HEADER
        alg = head["alg"] if head.get("alg") in HMAC_DIGESTS else "HS256"
        return make_hs(head, claims, key, alg)

    return issue


def token_server(issue: Issue) -> FastAPI:
    """Issues ``issue(username)`` from /token to the harness users and serves /users/me to any token it issued."""
    passwords = {creds.username: creds.password for creds in (PRIMARY, SECOND, DISABLED)}
    issued: dict[str, str] = {}
    app = FastAPI()
    no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or passwords.get(username) != password:
            return JSONResponse({"error": "invalid_grant"}, status_code=400, headers=no_store)
        access_token = issue(username)
        issued[access_token] = username
        body = {"access_token": access_token, "token_type": "bearer", "expires_in": 900}
        return JSONResponse(body, headers=no_store)

    @app.get("/users/me")
    async def me(request: Request) -> JSONResponse:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        username = issued.get(credentials) if scheme.lower() == "bearer" else None
        if username is None:
            challenge = 'Bearer realm="twin"' + (', error="invalid_token"' if credentials else "")
            return JSONResponse({"detail": "unauthorized"}, status_code=401, headers={"WWW-Authenticate": challenge})
        return JSONResponse({"username": username, "email": None, "full_name": None, "disabled": False})

    return app


def run_twin(issue: Issue, ids: list[str] | None = None, **config: Any) -> dict[str, Any]:
    return run_checks(token_server(issue), ids or [FMT], **config)


# -- the reference server and a well-behaved twin ------------------------------------------------


def test_token_format_passes_on_the_reference_server(reference: FastAPI) -> None:
    results = run_checks(reference, [FMT])
    assert {check_id: results[check_id].status for check_id in FMT_IDS} == dict.fromkeys(FMT_IDS, Status.PASS), explain(
        results
    )
    assert "lifetime 900 s" in results["JWT-FMT-008"].message
    assert "iss" in results["JWT-FMT-011"].message and "aud" in results["JWT-FMT-011"].message


def test_a_well_formed_twin_passes_every_format_check() -> None:
    results = run_twin(signed())
    assert {check_id: results[check_id].status for check_id in FMT_IDS} == dict.fromkeys(FMT_IDS, Status.PASS), explain(
        results
    )


def test_weak_secret_list_is_large_unique_and_has_no_comments() -> None:
    entries = weak_secrets()
    assert len(entries) >= 300
    assert len(set(entries)) == len(entries)
    assert not any(entry.startswith(b"#") or entry != entry.strip() for entry in entries)
    for published in (FASTAPI_DOCS_KEY, "your-secret-key", "your-256-bit-secret", "changeme", "secret"):
        assert published.encode() in entries


# -- JWT-FMT-001: compact serialization ----------------------------------------------------------


def _padded_payload_token(username: str) -> str:
    claims = good_claims(username)
    while len(json.dumps(claims, separators=(",", ":"))) % 3 == 0:
        claims["pad"] = claims.get("pad", "") + "x"
    payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).decode()
    assert payload.endswith("=")
    signing_input = f"{encode_json(HEADER)}.{payload}"
    return f"{signing_input}.{hmac_sign(signing_input, STRONG_KEY)}"


def _five_segment_token(username: str) -> str:
    return f"{encode_json({'alg': 'dir', 'enc': 'A256GCM'})}..{b64url_encode(b'iv')}.{b64url_encode(b'c')}.AA"


def _array_payload_token(username: str) -> str:
    signing_input = f"{encode_json(HEADER)}.{b64url_encode(json.dumps([username]).encode())}"
    return f"{signing_input}.{hmac_sign(signing_input, STRONG_KEY)}"


def _duplicate_claim_token(username: str) -> str:
    claims = good_claims(username)
    body = json.dumps(claims, separators=(",", ":"))[:-1] + f',"sub":"{SECOND.username}"}}'
    signing_input = f"{encode_json(HEADER)}.{b64url_encode(body.encode())}"
    return f"{signing_input}.{hmac_sign(signing_input, STRONG_KEY)}"


@pytest.mark.parametrize(
    ("issue", "says"),
    [
        (_padded_payload_token, "padding"),
        (_five_segment_token, "5 dot-separated"),
        (_array_payload_token, "not an object"),
        (_duplicate_claim_token, "repeats the member name"),
    ],
)
def test_fmt_001_fails_on_a_malformed_compact_jws(issue: Issue, says: str) -> None:
    results = run_twin(issue, ["JWT-FMT-001"])
    assert results["JWT-FMT-001"].status is Status.FAIL, explain(results)
    assert says in results["JWT-FMT-001"].message


# -- JWT-FMT-002: alg ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [Profile.RFC, Profile.FASTAPI])
def test_fmt_002_fails_on_unsigned_tokens_in_every_profile(profile: Profile) -> None:
    results = run_twin(lambda user: unsigned({"alg": "none", "typ": "at+jwt"}, good_claims(user)), profile=profile)
    assert results["JWT-FMT-002"].status is Status.FAIL, explain(results)
    assert "unsigned" in results["JWT-FMT-002"].message
    assert results["JWT-FMT-010"].status is Status.SKIP
    assert results["JWT-FMT-001"].status is Status.PASS
    assert results["JWT-FMT-005"].status is Status.PASS


def test_fmt_002_fails_on_an_unregistered_alg_spelling() -> None:
    results = run_twin(signed({"alg": "hs256", "typ": "at+jwt"}), ["JWT-FMT-002"])
    assert results["JWT-FMT-002"].status is Status.FAIL, explain(results)


def test_fmt_002_fails_on_a_truncated_hmac() -> None:
    results = run_twin(lambda user: signed()(user)[:-11], ["JWT-FMT-002"])
    assert results["JWT-FMT-002"].status is Status.FAIL, explain(results)
    assert "bytes long" in results["JWT-FMT-002"].message


# -- JWT-FMT-003: typ ----------------------------------------------------------------------------


def test_fmt_003_warns_without_typ_and_fails_when_strict() -> None:
    issue = signed({"alg": "HS256"})
    results = run_twin(issue)
    assert results["JWT-FMT-003"].status is Status.WARN, explain(results)
    others = {results[i].status for i in FMT_IDS if i != "JWT-FMT-003"}
    assert others == {Status.PASS}, explain(results)
    assert run_twin(issue, ["JWT-FMT-003"], strict=True)["JWT-FMT-003"].status is Status.FAIL


def test_fmt_003_warns_on_a_foreign_token_type() -> None:
    results = run_twin(signed({"alg": "HS256", "typ": "id+jwt"}), ["JWT-FMT-003"])
    assert results["JWT-FMT-003"].status is Status.WARN, explain(results)


# -- JWT-FMT-004: key-reference headers ----------------------------------------------------------


def test_fmt_004_reports_a_jku_header_as_info() -> None:
    results = run_twin(signed({**HEADER, "jku": "https://keys.example/jwks.json"}))
    assert results["JWT-FMT-004"].status is Status.INFO, explain(results)
    assert "jku" in results["JWT-FMT-004"].message
    assert results["JWT-FMT-002"].status is Status.PASS


# -- JWT-FMT-005: exp ----------------------------------------------------------------------------


@pytest.mark.parametrize("profile", [Profile.RFC, Profile.FASTAPI])
def test_fmt_005_fails_without_exp_in_every_profile(profile: Profile) -> None:
    results = run_twin(signed(change=lambda claims: claims.pop("exp")), profile=profile)
    assert results["JWT-FMT-005"].status is Status.FAIL, explain(results)
    assert results["JWT-FMT-008"].status is Status.WARN  # an unbounded lifetime
    assert results["JWT-FMT-007"].status is Status.PASS


def test_fmt_005_fails_on_a_string_exp() -> None:
    results = run_twin(signed(change=lambda claims: claims.update(exp=str(claims["exp"]))), ["JWT-FMT-005"])
    assert results["JWT-FMT-005"].status is Status.FAIL, explain(results)


def test_fmt_005_warns_on_a_float_exp() -> None:
    issue = signed(change=lambda claims: claims.update(exp=claims["exp"] + 0.5))
    results = run_twin(issue, ["JWT-FMT-005", "JWT-FMT-008"])
    assert results["JWT-FMT-005"].status is Status.WARN, explain(results)
    assert results["JWT-FMT-008"].status is Status.PASS
    assert run_twin(issue, ["JWT-FMT-005"], strict=True)["JWT-FMT-005"].status is Status.FAIL


# -- JWT-FMT-006: sub ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [lambda claims: claims.pop("sub"), lambda claims: claims.update(sub=42), lambda claims: claims.update(sub="")],
    ids=["missing", "integer", "empty"],
)
def test_fmt_006_fails_on_a_missing_or_non_string_sub(change: Callable[[dict[str, Any]], object]) -> None:
    results = run_twin(signed(change=change), ["JWT-FMT-006"])
    assert results["JWT-FMT-006"].status is Status.FAIL, explain(results)


@pytest.mark.parametrize(("typ", "status"), [("JWT", Status.WARN), ("at+jwt", Status.FAIL)])
def test_fmt_006_requires_sub_only_where_something_declares_it(typ: str, status: Status) -> None:
    # RFC 7519 makes sub optional (servers such as simplejwt name the user in user_id); RFC 9068 §2.2
    # requires it of at+jwt tokens. Here no contract of the target's own says anything about sub.
    def user_id_instead_of_sub(claims: dict[str, Any]) -> None:
        claims["user_id"] = claims.pop("sub")

    key = secrets.token_hex(32)
    app = token_server(signed(header={"alg": "HS256", "typ": typ}, change=user_id_instead_of_sub, key=key.encode()))
    results = run_checks(app, ["JWT-FMT-006", "JWT-CLM-006", "JWT-CLM-007"], contract=None, keys=Keys(hs_secret=key))
    assert results["JWT-FMT-006"].status is status, explain(results)
    # The sub claim checks say nothing about a server that does not use sub: skipped, not failed.
    assert results["JWT-CLM-006"].status is Status.SKIP, explain(results)
    assert results["JWT-CLM-007"].status is Status.SKIP, explain(results)


def test_fmt_006_fails_when_two_users_share_an_opaque_sub() -> None:
    results = run_twin(signed(change=lambda claims: claims.update(sub="user")), ["JWT-FMT-006"])
    assert results["JWT-FMT-006"].status is Status.FAIL, explain(results)
    assert "two different users" in results["JWT-FMT-006"].message


def test_fmt_006_accepts_a_distinct_opaque_user_id() -> None:
    ids = {PRIMARY.username: "4f1c", SECOND.username: "9a07", DISABLED.username: "77e2"}
    results = run_twin(signed(change=lambda claims: claims.update(sub=ids[claims["sub"]])), ["JWT-FMT-006"])
    assert results["JWT-FMT-006"].status is Status.PASS, explain(results)
    assert "opaque" in results["JWT-FMT-006"].message


# -- JWT-FMT-007: iat ----------------------------------------------------------------------------


def test_fmt_007_warns_without_iat_and_fails_when_strict() -> None:
    issue = signed(change=lambda claims: claims.pop("iat"))
    results = run_twin(issue)
    assert results["JWT-FMT-007"].status is Status.WARN, explain(results)
    assert results["JWT-FMT-008"].status is Status.PASS  # measured from the issue time instead
    assert run_twin(issue, ["JWT-FMT-007"], strict=True)["JWT-FMT-007"].status is Status.FAIL


def test_fmt_007_warns_on_an_iat_in_milliseconds() -> None:
    results = run_twin(signed(change=lambda claims: claims.update(iat=claims["iat"] * 1000)), ["JWT-FMT-007"])
    assert results["JWT-FMT-007"].status is Status.WARN, explain(results)
    assert "milliseconds" in (results["JWT-FMT-007"].hint or "")


def test_fmt_007_compares_iat_with_the_date_header() -> None:
    app = token_server(signed(change=lambda claims: claims.update(iat=claims["iat"] - 300)))

    @app.middleware("http")
    async def date_header(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
        return response

    results = run_checks(app, ["JWT-FMT-007"])
    assert results["JWT-FMT-007"].status is Status.WARN, explain(results)
    assert "Date header" in results["JWT-FMT-007"].message


# -- JWT-FMT-008: lifetime -----------------------------------------------------------------------


def test_fmt_008_warns_on_a_two_day_lifetime_and_fails_when_strict() -> None:
    issue = signed(change=lambda claims: claims.update(exp=claims["iat"] + 2 * 86400))
    results = run_twin(issue)
    assert results["JWT-FMT-008"].status is Status.WARN, explain(results)
    assert "172800 s" in results["JWT-FMT-008"].message
    others = {results[i].status for i in FMT_IDS if i != "JWT-FMT-008"}
    assert others == {Status.PASS}, explain(results)
    assert run_twin(issue, ["JWT-FMT-008"], strict=True)["JWT-FMT-008"].status is Status.FAIL


@pytest.mark.parametrize(("over_s", "status"), [(1, Status.PASS), (30, Status.WARN)])
def test_fmt_008_without_iat_allows_the_whole_seconds_of_the_date_header(over_s: int, status: Status) -> None:
    # No iat: the lifetime is exp minus the login answer's Date, which counts whole seconds (truncated).
    # A one-hour token read from a Date one second early is one hour; thirty seconds over is not.
    def one_hour_from_a_truncated_date(claims: dict[str, Any]) -> None:
        claims.pop("iat")
        claims["exp"] = int(time.time()) + 3600 + over_s

    app = token_server(signed(change=one_hour_from_a_truncated_date))

    @app.middleware("http")
    async def date_header(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Date"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(int(time.time()) - 1))
        return response

    results = run_checks(app, ["JWT-FMT-008"])
    assert results["JWT-FMT-008"].status is status, explain(results)


def test_fmt_008_names_milliseconds_in_exp() -> None:
    results = run_twin(signed(change=lambda claims: claims.update(exp=claims["exp"] * 1000)), ["JWT-FMT-008"])
    assert results["JWT-FMT-008"].status is Status.WARN, explain(results)
    assert "milliseconds" in (results["JWT-FMT-008"].hint or "")


# -- JWT-FMT-009: secrets and personal data ------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"password": "whatever"},
        {"user": {"hashed_password": "$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$aGFzaA"}},
        {"pw": PRIMARY.password},
    ],
    ids=["password-claim", "nested-hash", "password-value"],
)
def test_fmt_009_fails_on_password_material(extra: dict[str, Any]) -> None:
    results = run_twin(signed(change=lambda claims: claims.update(extra)), profile=Profile.FASTAPI)
    result = results["JWT-FMT-009"]
    assert result.status is Status.FAIL, explain(results)
    assert PRIMARY.password not in result.message and "argon2" not in result.message
    assert {results[i].status for i in FMT_IDS if i != "JWT-FMT-009"} == {Status.PASS}, explain(results)


def test_fmt_009_warns_on_other_secrets_and_reports_email_as_info() -> None:
    secret = run_twin(signed(change=lambda claims: claims.update(client_secret="abc")), ["JWT-FMT-009"])
    assert secret["JWT-FMT-009"].status is Status.WARN, explain(secret)
    email = run_twin(signed(change=lambda claims: claims.update(email="bob@example.com")), ["JWT-FMT-009"])
    assert email["JWT-FMT-009"].status is Status.INFO, explain(email)


# -- JWT-FMT-010: published secrets --------------------------------------------------------------


@pytest.mark.parametrize("profile", [Profile.RFC, Profile.FASTAPI])
def test_fmt_010_fails_on_a_published_secret_in_every_profile(profile: Profile) -> None:
    results = run_twin(signed(key=b"your-secret-key"), profile=profile)
    result = results["JWT-FMT-010"]
    assert result.status is Status.FAIL, explain(results)
    assert "list entry #" in result.message and "length 15" in result.message
    assert "your-secret-key" not in json.dumps(result.to_dict())
    assert {results[i].status for i in FMT_IDS if i != "JWT-FMT-010"} == {Status.PASS}, explain(results)


def test_fmt_010_fails_on_an_hs512_token_with_an_empty_key() -> None:
    results = run_twin(signed({"alg": "HS512", "typ": "at+jwt"}, key=b""), ["JWT-FMT-010"])
    assert results["JWT-FMT-010"].status is Status.FAIL, explain(results)
    assert "EMPTY key" in results["JWT-FMT-010"].message


def test_fmt_010_fails_when_the_configured_key_is_too_short() -> None:
    short = secrets.token_urlsafe(12)
    results = run_twin(signed(key=short.encode()), ["JWT-FMT-010"], keys=Keys(hs_secret=short))
    assert results["JWT-FMT-010"].status is Status.FAIL, explain(results)
    assert "shorter than the 32 bytes" in results["JWT-FMT-010"].message


def test_fmt_010_skips_asymmetric_tokens() -> None:
    def es256(username: str) -> str:
        header = encode_json({"alg": "ES256", "typ": "at+jwt"})
        return f"{header}.{encode_json(good_claims(username))}.{b64url_encode(secrets.token_bytes(64))}"

    results = run_twin(es256, ["JWT-FMT-010"])
    assert results["JWT-FMT-010"].status is Status.SKIP, explain(results)
    assert "ES256" in results["JWT-FMT-010"].message


def test_fmt_010_cracks_the_fastapi_docs_key_of_the_tutorial() -> None:
    results = run_checks(tutorial_app(secret_key=FASTAPI_DOCS_KEY), ["JWT-FMT-010"], profile=Profile.FASTAPI)
    assert results["JWT-FMT-010"].status is Status.FAIL, explain(results)
    assert FASTAPI_DOCS_KEY not in results["JWT-FMT-010"].message


# -- JWT-FMT-011: iss and aud --------------------------------------------------------------------


def test_fmt_011_fails_without_iss_and_aud() -> None:
    results = run_twin(signed(change=lambda claims: [claims.pop("iss"), claims.pop("aud")]))
    assert results["JWT-FMT-011"].status is Status.FAIL, explain(results)
    assert "iss and aud" in results["JWT-FMT-011"].message
    assert {results[i].status for i in FMT_IDS if i != "JWT-FMT-011"} == {Status.PASS}, explain(results)


def test_fmt_011_fails_on_a_malformed_aud_in_every_profile() -> None:
    issue = signed(change=lambda claims: claims.update(aud=7))
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_twin(issue, ["JWT-FMT-011"], profile=profile)
        assert results["JWT-FMT-011"].status is Status.FAIL, explain(results)


JWT_HEADER = {"alg": "HS256", "typ": "JWT"}


def without_iss_and_aud(claims: dict[str, Any]) -> None:
    claims.pop("iss")
    claims.pop("aud")


def test_fmt_011_an_at_jwt_token_owes_iss_and_aud_whatever_its_contract() -> None:
    # RFC 9068 §2.2: a token typed at+jwt claims the profile that makes iss and aud REQUIRED.
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_twin(signed(change=without_iss_and_aud), ["JWT-FMT-011"], profile=profile, contract=None)
        assert results["JWT-FMT-011"].status is Status.FAIL, explain(results)
        assert results["JWT-FMT-011"].message == (
            'the token lacks the iss and aud claim(s) that the token\'s own typ "at+jwt" (RFC 9068 §2.2) declare(s)'
        )


def test_fmt_011_a_plain_jwt_without_iss_and_aud_is_info_when_nothing_declares_them() -> None:
    issue = signed(header=JWT_HEADER, change=without_iss_and_aud)
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_twin(issue, ["JWT-FMT-011"], profile=profile, contract=None)
        assert results["JWT-FMT-011"].status is Status.INFO, explain(results)
        assert "nothing declares them" in results["JWT-FMT-011"].message
    claimed = run_twin(issue, ["JWT-FMT-011"])  # the same server, claiming the kit's contract
    assert claimed["JWT-FMT-011"].status is Status.FAIL, explain(claimed)
    assert claimed["JWT-FMT-011"].message.endswith("that the kit's contract 1.5.0 (kit:1.5.0) declare(s)")


def test_fmt_011_the_config_declares_the_values_the_tokens_carry() -> None:
    issue = signed(header=JWT_HEADER, change=lambda claims: claims.update(aud=["other-api", "twin-api"]))
    right = run_twin(issue, ["JWT-FMT-011"], contract=None, issuer="twin", audience="twin-api")
    assert right["JWT-FMT-011"].status is Status.PASS, explain(right)
    for profile in (Profile.RFC, Profile.FASTAPI):
        wrong = run_twin(issue, ["JWT-FMT-011"], contract=None, profile=profile, issuer="https://issuer.example")
        assert wrong["JWT-FMT-011"].status is Status.FAIL, explain(wrong)
        assert wrong["JWT-FMT-011"].message == '"iss": "twin", not the configured "https://issuer.example"'
    missing = run_twin(signed(header=JWT_HEADER, change=without_iss_and_aud), ["JWT-FMT-011"], audience="api")
    assert missing["JWT-FMT-011"].status is Status.FAIL, explain(missing)


def test_fmt_011_a_malformed_undeclared_aud_is_a_warning() -> None:
    issue = signed(header=JWT_HEADER, change=lambda claims: claims.update(aud=7))
    results = run_twin(issue, ["JWT-FMT-011"], contract=None)
    assert results["JWT-FMT-011"].status is Status.WARN, explain(results)


# -- JWT-FMT-012: distinct tokens ----------------------------------------------------------------


def test_fmt_012_reports_identical_tokens_as_info() -> None:
    fixed = {user: signed()(user) for user in (PRIMARY.username, SECOND.username, DISABLED.username)}
    results = run_twin(fixed.__getitem__, ["JWT-FMT-012"])
    assert results["JWT-FMT-012"].status is Status.INFO, explain(results)
    assert "identical token" in results["JWT-FMT-012"].message


def test_fmt_012_reports_a_repeated_jti_as_info() -> None:
    counter = iter(range(1000))
    results = run_twin(signed(change=lambda claims: claims.update(jti="same", nonce=next(counter))), ["JWT-FMT-012"])
    assert results["JWT-FMT-012"].status is Status.INFO, explain(results)
    assert "share the jti" in results["JWT-FMT-012"].message


# -- the FastAPI tutorial dialect ----------------------------------------------------------------


def test_tutorial_dialect_fails_only_iss_aud_in_rfc_and_warns_in_fastapi() -> None:
    # The tutorial's server claiming the kit's contract, which declares iss and aud.
    app = tutorial_app(cache_headers=True)
    rfc = run_checks(app, [FMT])
    fastapi = run_checks(app, [FMT], profile=Profile.FASTAPI)
    for results, iss_aud in ((rfc, Status.FAIL), (fastapi, Status.WARN)):
        assert results["JWT-FMT-011"].status is iss_aud, explain(results)
        assert results["JWT-FMT-007"].status is Status.WARN, explain(results)  # no iat: SHOULD in both
        fine = {i: results[i].status for i in FMT_IDS if i not in ("JWT-FMT-007", "JWT-FMT-011", "JWT-FMT-012")}
        assert fine == {i: Status.PASS for i in fine}, explain(results)
        assert results["JWT-FMT-012"].status in (Status.PASS, Status.INFO)  # same-second logins give equal tokens
        assert "typ 'JWT'" in results["JWT-FMT-003"].message


def test_the_tutorial_server_on_its_own_is_not_held_to_iss_and_aud() -> None:
    # Its own /openapi.json declares no claims, and its tokens are typed JWT, not at+jwt.
    for profile in (Profile.RFC, Profile.FASTAPI):
        results = run_checks(tutorial_app(cache_headers=True), ["JWT-FMT-011"], profile=profile, contract=None)
        assert results["JWT-FMT-011"].status is Status.INFO, explain(results)
