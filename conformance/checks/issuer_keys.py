"""ISS-*: an API that trusts an identity provider, checked with the suite as that provider (issuer mode).

RFC 9068 §4 (validating JWT access tokens), RFC 8725 §3.8-3.10, OpenID Connect Discovery §4 and
OpenID Connect Core §10.1.1 (key rotation through the JWK Set).

The run is the test issuer the API trusts (``jwt-conformance issuer``, ``run --issuer-keys DIR``): it
mints tokens with the issuer's keys, signs others with keys the issuer never published, publishes a
probe key and removes it again, and reads from the issuer how often the API fetched its key set. The
claim, algorithm, header and bearer checks (JWT-CLM/ALG/HDR, BEARER) run unchanged with minted tokens;
these checks cover what only an issuer can set up. Outside issuer mode they SKIP and say how to run it.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..context import Context
from ..forge import b64url_encode, encode_json
from ..issuer.keys import SPARE, add_probe_key, read_state, remove_probe_key, retire_spare_key
from ..issuer.mint import sign
from ..issuer_mode import IssuerSession
from ..model import Failure, Level, Need, Skip
from ..redaction import register_private_key
from ..registry import check
from ._expect import describe, expect_refused, is_success
from .key_headers import attacker_keys

HINT = (
    "Verify access tokens only with the keys of the trusted issuer's JWK Set, found by kid, with the "
    "algorithm the key allows; require iss (exact match) and aud (RFC 9068 §4)."
)
ROTATION_HINT = (
    "Refetch the issuer's JWK Set when a token names an unknown kid (at a bounded rate), and expire the "
    "cached set so a removed key stops working (e.g. jose's createRemoteJWKSet, PyJWKClient with a lifespan)."
)
STORM_TOKENS = 20
POLL_S = 1.0


def _signed_by_an_unpublished_key(claims: dict[str, Any], kid: str | None) -> str:
    """An ``at+jwt`` of ``claims`` signed RS256 by a key no issuer publishes, naming ``kid`` (or none)."""
    header: dict[str, Any] = {"alg": "RS256", "typ": "at+jwt"}
    if kid is not None:
        header["kid"] = kid
    signing_input = f"{encode_json(header)}.{encode_json(claims)}"
    return f"{signing_input}.{b64url_encode(sign(attacker_keys().rsa, 'RS256', signing_input.encode()))}"


def _session(ctx: Context) -> IssuerSession:
    return ctx.require_issuer()


@check("ISS-001", level=Level.MUST, spec=["RFC 9068 §4", "RFC 8725 §3.10"], needs=[Need.ISSUER])
def keys_outside_the_issuers_key_set_are_refused(ctx: Context) -> str | None:
    """A token signed by a key the issuer does not publish is refused, whatever kid it names.

    Sent: tokens signed by a key the issuer never published, with a new kid, with the kid of the
    issuer's signing key, and with no kid. (A key the issuer has removed is ISS-004's.)

    Impact: a key outside the issuer's JWK Set accepted lets anyone mint tokens the API trusts.
    """
    issuer = _session(ctx)
    claims = issuer.claims()
    signer_kid = ctx.parsed.header.get("kid") if ctx.parsed.header else None

    def foreign(kid: str | None) -> str:
        return _signed_by_an_unpublished_key(claims, kid)

    variants = [
        ("a token signed by an unpublished key with a new kid", foreign(secrets.token_urlsafe(16))),
        ("a token signed by an unpublished key with the kid of the issuer's signing key", foreign(signer_kid)),
        ("a token signed by an unpublished key with no kid", foreign(None)),
    ]
    for what, token in variants:
        expect_refused(ctx.accepted(token), what=what, hint=HINT)
    return f"{len(variants)} tokens refused"


@check("ISS-002", level=Level.MUST, spec=["RFC 9068 §4", "RFC 8725 §3.8", "RFC 8725 §3.9"], needs=[Need.ISSUER])
def issuer_and_audience_are_required_and_exact(ctx: Context) -> str | None:
    """Tokens without iss, without aud, or whose iss only starts with the trusted issuer are refused.

    Impact: a resource server that does not require its issuer and audience accepts tokens minted for
    other APIs or by other tenants of the same provider.
    """
    # RFC 9068 §4: the issuer identifier "MUST exactly match the value of the iss claim"; the resource
    # server "MUST validate that the aud claim contains a resource indicator value corresponding to an
    # identifier the resource server expects for itself".
    issuer = _session(ctx)
    claims = issuer.claims()
    # An API that ignores iss (or aud) altogether fails JWT-CLM-010 (or JWT-CLM-011) for it: one defect, one
    # verdict. Here: an API that checks them when present, but does not require them or compares by prefix.
    checks_iss = not is_success(ctx.accepted(issuer.mint({**claims, "iss": "https://attacker.invalid"})))
    checks_aud = not is_success(ctx.accepted(issuer.mint({**claims, "aud": "another-api"})))
    variants = []
    if checks_iss:
        variants.append(("a token without iss", {k: v for k, v in claims.items() if k != "iss"}))
        extended = f"{issuer.mode.url}.attacker.invalid"
        variants.append(("a token whose iss extends the trusted issuer's URL", {**claims, "iss": extended}))
    if checks_aud:
        variants.append(("a token without aud", {k: v for k, v in claims.items() if k != "aud"}))
    if not variants:
        raise Skip("the API accepts another issuer and another audience: see JWT-CLM-010 and JWT-CLM-011")
    for what, changed in variants:
        expect_refused(ctx.accepted(issuer.mint(changed)), what=what, hint=HINT)
    ignored = [name for name, checked in (("iss", checks_iss), ("aud", checks_aud)) if not checked]
    return f"{' and '.join(ignored)} not checked at all: see JWT-CLM-010/011" if ignored else None


def _poll(ctx: Context, token: str, wait_s: float, accepted: bool) -> tuple[float | None, Any]:
    """Seconds until the token is accepted (or refused), or ``None`` when the wait ends first."""
    started = time.monotonic()
    deadline = started + wait_s
    while True:
        response = ctx.accepted(token)
        if is_success(response) == accepted:
            return time.monotonic() - started, response
        if time.monotonic() >= deadline:
            return None, response
        time.sleep(min(POLL_S, max(0.0, deadline - time.monotonic())))


def _within_max_wait(ctx: Context, wait_s: float, setting: str, what: str) -> None:
    if wait_s > ctx.config.max_wait_s:
        raise Skip(
            f"the API may take up to {wait_s:g} s (issuer.{setting}) to {what}: raise --max-wait to {wait_s:g}, "
            f"or set issuer.{setting} to what the API's key cache allows"
        )


@check(
    "ISS-003",
    level=Level.SHOULD,
    spec=["OpenID Connect Core §10.1.1", "RFC 8414 §2"],
    needs=[Need.ISSUER],
    cost="standard",
)
def a_newly_published_key_is_accepted(ctx: Context) -> str | None:
    """A token signed by a key the issuer has just published is accepted within the key refresh wait.

    The run publishes a probe key (besides the issuer's own) and removes it when done; the API, meeting its
    unknown kid, should refetch the JWK Set. Refused for the whole wait (``issuer.key_refresh_wait``), the
    API would lock every user out when its provider rotates keys.
    """
    issuer = _session(ctx)
    wait = issuer.mode.key_refresh_wait_s
    _within_max_wait(ctx, wait, "key_refresh_wait", "accept a newly published key")
    alg = (ctx.parsed.header or {}).get("alg")
    entry = add_probe_key(issuer.keys_dir, alg if alg in ("RS256", "ES256", "EdDSA") else "RS256")
    register_private_key(ctx.state.client.redact, issuer.keys_dir / f"{entry.kid}.pem", "${ISSUER_KEY}")
    try:
        ctx.progress(f"a key rotation: waiting up to {wait:g} s for the API to accept a new key")
        accepted_after, last = _poll(ctx, issuer.mint(issuer.claims(), kid=entry.kid), wait, accepted=True)
    finally:
        remove_probe_key(issuer.keys_dir, entry.kid)
    if accepted_after is None:
        raise Failure(
            f"a token signed by a newly published key was refused for {wait:g} s",
            expected=f"accepted within {wait:g} s (issuer.key_refresh_wait): the API refetches the JWK Set",
            actual=describe(last),
            hint=ROTATION_HINT,
        )
    return f"accepted {accepted_after:.1f} s after the key was published"


@check(
    "ISS-004",
    level=Level.MUST,
    spec=["RFC 7517 §5", "OpenID Connect Core §10.1.1"],
    needs=[Need.ISSUER],
    cost="standard",
)
def a_removed_key_is_refused(ctx: Context) -> str | None:
    """A token signed by a key the issuer has removed from its JWK Set is refused within the key removal wait.

    The key: the issuer's spare, published since the issuer started (so an API that loads the key set once
    knows it too). The run removes it from the JWK Set (a new spare takes its place) and keeps sending the
    token. The wait (``issuer.key_removal_wait``) is the key-cache lifetime the API may have: 600 s covers the
    common defaults (jose 10 min, PyJWKClient 5 min); set it to the API's own. It needs --max-wait as long.

    Impact: a removed key (rotated out after a compromise) that still works keeps a stolen key usable for
    as long as the API runs.
    """
    issuer = _session(ctx)
    wait = issuer.mode.key_removal_wait_s
    _within_max_wait(ctx, wait, "key_removal_wait", "drop a removed key")
    spare = next((key for key in read_state(issuer.keys_dir).keys if key.status == SPARE), None)
    if spare is None:
        raise Skip("the issuer publishes no spare key: restart `jwt-conformance issuer` (it adds one when it starts)")
    token = issuer.mint(issuer.claims(), kid=spare.kid)
    before = ctx.accepted(token)
    if not is_success(before):
        raise Skip(
            f"the API refuses a token of the issuer's published spare key ({before.status}), so its removal shows "
            "nothing: see ISS-003"
        )
    retire_spare_key(issuer.keys_dir, spare.kid)  # out of the JWK Set; a new spare is published for the next run
    ctx.progress(f"a key rotation: waiting up to {wait:g} s for the API to refuse a removed key")
    refused_after, last = _poll(ctx, token, wait, accepted=False)
    if refused_after is None:
        raise Failure(
            f"a token signed by a key removed from the issuer's JWK Set was still accepted after {wait:g} s",
            expected=f"refused within {wait:g} s (issuer.key_removal_wait) of the key's removal",
            actual=describe(last),
            hint=ROTATION_HINT,
            level=Level.MUST,
            security=True,
        )
    return f"refused {refused_after:.1f} s after the key left the JWK Set"


@check("ISS-005", level=Level.SHOULD, spec=["RFC 8725 §3.10", "OpenID Connect Core §10.1.1"], needs=[Need.ISSUER])
def unknown_kids_do_not_cause_a_fetch_storm(ctx: Context) -> str | None:
    """Tokens with unknown kids make the API refetch the issuer's JWK Set at a bounded rate, not once per token.

    Sent: 20 tokens, each with a new unknown kid. Fetches counted at the issuer: about one per token means
    anyone can turn the API into a flood against its identity provider (and slow every request down).
    """
    issuer = _session(ctx)
    before = issuer.fetches()
    if before is None:
        raise Skip(f"the issuer at {issuer.mode.endpoint} does not say how often its key set was fetched")
    claims = issuer.claims()
    for _ in range(STORM_TOKENS):
        token = _signed_by_an_unpublished_key(claims, secrets.token_urlsafe(12))
        expect_refused(ctx.accepted(token), what="a token with an unknown kid", hint=HINT)
    after = issuer.fetches()
    if after is None:
        raise Skip("the issuer stopped answering while the fetches were counted")
    fetched = after["jwks"] - before["jwks"]
    if fetched >= STORM_TOKENS // 2:
        raise Failure(
            f"{STORM_TOKENS} tokens with unknown kids made the API fetch the issuer's JWK Set {fetched} times",
            expected="a bounded refetch rate (e.g. at most one fetch per 30 s)",
            actual=f"{fetched} fetches of the JWK Set for {STORM_TOKENS} tokens",
            hint=ROTATION_HINT,
        )
    return f"{fetched} fetch(es) of the JWK Set for {STORM_TOKENS} tokens with unknown kids"
