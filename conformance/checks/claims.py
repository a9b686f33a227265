"""JWT-CLM-*: claim validation. RFC 7519 §4.1 <https://www.rfc-editor.org/rfc/rfc7519#section-4.1>,
RFC 8725 §3.8-3.9, RFC 9068 §4.

The tokens are minted with the server's own key (--hs-secret, keys.hs_secret, a key cracked by
JWT-FMT-010, --private-key-file, or the test issuer's key in issuer mode) from the baseline token's
header and claims, with one claim changed. A control token,
re-signed unchanged, must be accepted first: otherwise the key is wrong and nothing is concluded.
Without a key these checks SKIP and say how to enable them (JWT-CLM-001 can also wait out a short
token's real expiry).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from ..client import Response
from ..context import Context
from ..forge import HMAC_DIGESTS, b64url_encode, encode_json
from ..model import Failure, Info, Level, Need, Skip
from ..registry import check
from ..signing import can_sign, signer_for
from ._expect import describe, expect_refused, is_success

NO_KEY = (
    "needs the server's signing key to mint tokens with chosen claims: pass --hs-secret for an HMAC server "
    "or --private-key-file for an RS256/ES256/EdDSA one (or keys.* in the config file); for an API that "
    "trusts an identity provider, run in issuer mode (--issuer-keys DIR)"
)
HINT = "Validate every registered claim the contract relies on (PyJWT: options={'require': [...]}, issuer=, audience=)."
EXPIRY_MARGIN_S = 60
REMOVE = object()


class Minter:
    """Signs variants of the baseline token with the server's own key (HMAC secret, private key, test issuer)."""

    def __init__(self, ctx: Context) -> None:
        parsed = ctx.parsed
        if parsed.header is None or parsed.claims is None or not parsed.alg:
            raise Skip("the issued token is not a signed JWS with a JSON payload (see JWT-FMT-001)")
        self.ctx, self.alg = ctx, parsed.alg
        sign = signer_for(ctx, parsed)
        key_file = ctx.config.keys.private_key_file
        if sign is None and key_file is not None and parsed.alg not in HMAC_DIGESTS and ctx.state.issuer is None:
            raise Skip(f"the private key in {key_file} cannot sign {parsed.alg} tokens")
        if sign is None:
            raise Skip(NO_KEY)
        self.sign = sign
        self.header, self.claims = parsed.header, parsed.claims
        control = ctx.accepted(self.mint())
        if not is_success(control):
            raise Skip(
                f"the baseline token re-signed with the given key was refused ({control.status}): "
                "the key is not the server's signing key"
            )

    def mint(self, **changes: Any) -> str:
        claims = dict(self.claims)
        for name, value in changes.items():
            if value is REMOVE:
                claims.pop(name, None)
            else:
                claims[name] = value
        signing_input = f"{encode_json(self.header)}.{encode_json(claims)}"
        return f"{signing_input}.{b64url_encode(self.sign(signing_input.encode()))}"

    def refused(self, what: str, hint: str = HINT, **changes: Any) -> None:
        expect_refused(self.ctx.accepted(self.mint(**changes)), what=what, hint=hint)


def _identity_from_the_issuer(ctx: Context) -> bool:
    """Issuer mode with an API that may serve the token's own identity: not declared to map sub to its users."""
    issuer = ctx.state.issuer
    return issuer is not None and not issuer.mode.local_users and ctx.state.contract.kit_version is None


def _now() -> int:
    return int(time.time())


@check("JWT-CLM-001", level=Level.MUST, spec=["RFC 7519 §4.1.4", "RFC 6750 §3.1"], needs=[Need.SHORT_TTL])
def expired_token_is_rejected(ctx: Context) -> str | None:
    """A token whose exp has passed (by a minute) is refused with 401.

    Impact: An expired token still accepted makes a stolen token usable after its lifetime.
    """
    # RFC 7519 §4.1.4: exp is the time "on or after which the JWT MUST NOT be accepted for processing".
    if can_sign(ctx):
        Minter(ctx).refused("a token that expired 2 minutes ago", exp=_now() - 120)
        return None
    exp = (ctx.parsed.claims or {}).get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise Skip("the issued token has no numeric exp (see JWT-FMT-005)")
    wait = exp + EXPIRY_MARGIN_S - time.time()
    if wait > ctx.config.max_wait_s:
        raise Skip(
            f"the token expires in {wait - EXPIRY_MARGIN_S:.0f} s: {NO_KEY}, or raise --max-wait above {wait:.0f} s, "
            "or give the test account a short token lifetime"
        )
    ctx.progress(f"waiting {max(0.0, wait):.0f} s for a real token to expire (no signing key to mint an expired one)")
    time.sleep(max(0.0, wait))
    expect_refused(ctx.accepted(ctx.token()), what="the baseline token after its exp", hint=HINT)
    return f"waited {max(0.0, wait):.0f} s for the real token to expire"


@check("JWT-CLM-002", level=Level.MUST, spec=["RFC 7519 §4.1.4"], needs=[Need.SIGNING_KEY])
def expiry_leeway_is_small(ctx: Context) -> str | None:
    """A token expired 10 minutes ago is refused; one expired 5 seconds ago may be (leeway).

    Impact: As JWT-CLM-001; a few seconds of leeway are allowed, ten minutes are not.
    """
    # RFC 7519 §4.1.4: "Implementers MAY provide for some small leeway, usually no more than a few minutes".
    minter = Minter(ctx)
    minter.refused("a token that expired 10 minutes ago", exp=_now() - 600)
    recent = ctx.accepted(minter.mint(exp=_now() - 5))
    return "a token expired 5 s ago is " + ("accepted (leeway)" if is_success(recent) else "refused (no leeway)")


@check("JWT-CLM-003", level=Level.MUST, spec=["RFC 7519 §4.1.5"], needs=[Need.SIGNING_KEY])
def not_yet_valid_token_is_rejected(ctx: Context) -> str | None:
    """A token whose nbf is 10 minutes ahead is refused.

    Impact: A token used before its nbf defeats tokens issued for later use.
    """
    # RFC 7519 §4.1.5: nbf is the time "before which the JWT MUST NOT be accepted for processing".
    Minter(ctx).refused("a token not valid for 10 more minutes (nbf)", nbf=_now() + 600)
    return None


@check("JWT-CLM-004", level=Level.MUST, spec=["RFC 9068 §2.2", "ASVS 9.2.1"], needs=[Need.SIGNING_KEY], dialect=True)
def token_without_exp_is_rejected(ctx: Context) -> str | None:
    """A token without exp is refused (access tokens must expire).

    Impact: A token without exp accepted is a credential that never expires.
    """
    minter = Minter(ctx)
    response = ctx.accepted(minter.mint(exp=REMOVE))
    if is_success(response):
        raise Failure(
            "a validly signed token WITHOUT exp was accepted: it never expires",
            expected="401",
            actual=describe(response),
            hint="Require exp when decoding (PyJWT verifies exp only when present: options={'require': ['exp']}).",
        )
    expect_refused(response, what="a token without exp", hint=HINT)
    return None


FAR_FUTURE_EXP = 10**20


@check("JWT-CLM-005", level=Level.MUST, spec=["RFC 7519 §2", "RFC 7519 §4.1.4"], needs=[Need.SIGNING_KEY])
def malformed_exp_is_rejected(ctx: Context) -> str | None:
    """A token whose exp is past by any reading (numeric string, negative, fraction) or unreadable (null) is refused.

    Severity by impact. RFC 7519 §2 makes exp a NumericDate, a JSON number that may have a fraction,
    and §4.1.4 says a JWT MUST NOT be accepted on or after it:
    - a past exp accepted in any spelling (a numeric string, a negative number, a fraction) bypasses
      the expiry: FAIL, whatever the profile;
    - exp null, or a date string that is in the past for whoever reads it, accepted: the token has
      no usable expiry, as a token without exp. When a token without exp is accepted too, that is
      JWT-CLM-004's defect, not reported again here; otherwise it is a bypass of its own: FAIL;
    - a numeric string in the future accepted: lenient parsing (PyJWT reads exp with int()) that
      still enforces the time; an attacker gains nothing, only the type rule is bent: WARN;
    - a fraction in the future accepted: a valid NumericDate, which is right;
    - exp 1e20 accepted: a valid NumericDate that only the key holder can sign; RFC 7519 sets no
      maximum lifetime, so bounding it is the issuer's policy: INFO.
    A 5xx on any of them fails (as on every check).

    Impact: An exp the server cannot read as a NumericDate must not turn expiry off: a past value accepted is an
    expiry bypass; a future one read leniently is only lenient parsing (warning).
    """
    minter = Minter(ctx)
    past, future = _now() - 600, _now() + 600
    bypassed: list[tuple[str, Response]] = []
    for what, value in (
        ("a numeric string in the past", str(past)),
        ("negative (1969)", -1),
        ("a fraction in the past", past + 0.5),
    ):
        response = ctx.accepted(minter.mint(exp=value))
        if is_success(response):
            bypassed.append((what, response))
    unreadable = [
        (what, response)
        for what, value in (("null", None), ("a date string in the past", "1970-01-01T00:00:00Z"))
        if is_success(response := ctx.accepted(minter.mint(exp=value)))
    ]
    notes = []
    if unreadable:
        if is_success(ctx.accepted(minter.mint(exp=REMOVE))):
            notes.append(
                f"exp {', '.join(w for w, _ in unreadable)} accepted as no expiry, as a token without exp "
                "(reported by JWT-CLM-004)"
            )
        else:
            bypassed += [(f"{what} (no usable expiry)", response) for what, response in unreadable]
    if bypassed:
        raise Failure(
            "a token whose exp has passed or cannot be read was ACCEPTED: "
            + ", ".join(f"exp {what}" for what, _ in bypassed),
            expected="401: a JWT MUST NOT be accepted on or after its exp (RFC 7519 §4.1.4)",
            actual=describe(bypassed[0][1]),
            hint="Read exp as a JSON number only and refuse any other type. " + HINT,
            security=True,
        )
    if not is_success(ctx.accepted(minter.mint(exp=future + 0.5))):
        notes.append("a fractional exp in the future is refused (RFC 7519 §2 allows fractions)")
    if is_success(ctx.accepted(minter.mint(exp=FAR_FUTURE_EXP))):
        notes.append("exp 1e20 (never) is accepted: valid per RFC 7519, but consider bounding token lifetimes")
    lenient = ctx.accepted(minter.mint(exp=str(future)))
    if is_success(lenient):
        raise Failure(
            "a token whose exp is a numeric string (in the future) was accepted: exp is parsed leniently, "
            "though a past one is refused" + "".join(f"; {note}" for note in notes),
            expected="401: exp is a NumericDate, a JSON number (RFC 7519 §2)",
            actual=describe(lenient),
            hint="Refuse an exp that is not a JSON number (PyJWT reads it with int(): check its type yourself).",
            level=Level.SHOULD,
        )
    if any(note.startswith("exp 1e20") for note in notes):
        raise Info("; ".join(notes))
    return "; ".join(notes) or None


def _needs_sub(ctx: Context) -> None:
    """The sub checks judge servers that name the user in sub; one whose tokens carry none uses another claim."""
    if "sub" not in (ctx.parsed.claims or {}):
        raise Skip(
            "the server's tokens carry no sub: it names the user in another claim, so removing or changing sub "
            "says nothing (JWT-FMT-006 reports the missing sub)"
        )


@check("JWT-CLM-006", level=Level.MUST, spec=["RFC 9068 §2.2", "contract"], needs=[Need.SIGNING_KEY])
def token_without_sub_is_rejected(ctx: Context) -> str | None:
    """A token without sub is refused.

    Impact: A token without a subject accepted leaves the server serving a request for nobody in particular, or
    for a default user.
    """
    _needs_sub(ctx)
    Minter(ctx).refused("a token without sub", sub=REMOVE)
    return None


@check("JWT-CLM-007", level=Level.MUST, spec=["RFC 8725 §3.8"], needs=[Need.SIGNING_KEY])
def unknown_subject_is_rejected(ctx: Context) -> str | None:
    """A token whose sub names no user is refused with 401 (not served, not a 5xx).

    In issuer mode it applies when the API maps sub to users of its own: ``issuer.local_users: true``,
    or the target claims the kit's contract.

    Impact: A token for a deleted or unknown user accepted keeps access alive after the account is gone.
    """
    _needs_sub(ctx)
    if _identity_from_the_issuer(ctx):
        raise Skip(
            "issuer mode: the API may serve the identity the trusted issuer's token carries, with no user list "
            "of its own; set issuer.local_users: true (or claim the kit's contract) if it maps sub to its users"
        )
    Minter(ctx).refused("a token for an unknown user", sub="no-such-user-" + secrets.token_hex(6))
    return None


@check("JWT-CLM-008", level=Level.MUST, spec=["RFC 7519 §4.1.2"], needs=[Need.SIGNING_KEY])
def malformed_sub_is_rejected(ctx: Context) -> str | None:
    """sub as a number, an array, null, or a 10 KB string is refused, never a 5xx.

    In issuer mode, unless the API maps sub to users of its own (``issuer.local_users``), such tokens
    come signed by the issuer it trusts: only a 5xx fails, and acceptance is noted.

    Impact: A subject of the wrong type accepted, or a 5xx, shows identity lookups an attacker can confuse.
    """
    _needs_sub(ctx)
    minter = Minter(ctx)
    username = ctx.login_name or "user"
    variants = (("a number", 42), ("an array", [username]), ("null", None), ("10 KB long", "u" * 10_240))
    if _identity_from_the_issuer(ctx):
        # The trusted issuer signed these: only a 5xx shows a defect of the API; acceptance is noted.
        accepted = []
        for what, value in variants:
            response = ctx.accepted(minter.mint(sub=value))
            if response.status >= 500:
                raise Failure(
                    f"a token whose sub is {what} made the API fail with {response.status}",
                    expected="2xx, or a refusal with 401",
                    actual=describe(response),
                    hint="Treat sub as an opaque string and refuse any other type with 401.",
                )
            if is_success(response):
                accepted.append(what)
        if accepted:
            raise Info(
                f"tokens of the trusted issuer whose sub is {', '.join(accepted)} are accepted: the API trusts "
                "the issuer to send well-formed subjects (RFC 7519 §4.1.2: sub is a string)"
            )
        return None
    for what, value in variants:
        minter.refused(f"a token whose sub is {what}", sub=value)
    return None


@check("JWT-CLM-009", level=Level.MAY, spec=["RFC 9068 §4"], needs=[Need.SIGNING_KEY])
def future_iat_is_noted(ctx: Context) -> str | None:
    """A token issued an hour in the future (iat) is refused, or that acceptance is noted."""
    minter = Minter(ctx)
    response = ctx.accepted(minter.mint(iat=_now() + 3600))
    if is_success(response):
        raise Info("a token with iat an hour in the future is accepted (no RFC rule; RFC 9068 servers usually refuse)")
    return None


def _declared(ctx: Context, claim: str) -> Any:
    value = (ctx.parsed.claims or {}).get(claim)
    if value is None:
        raise Skip(f"the issued token carries no {claim}: nothing to check against (see JWT-FMT-011)")
    return value


@check("JWT-CLM-010", level=Level.MUST, spec=["RFC 8725 §3.8"], needs=[Need.SIGNING_KEY, Need.CAPABILITY])
def wrong_issuer_is_rejected(ctx: Context) -> str | None:
    """A token from another issuer (iss changed) is refused.

    Impact: A token from another issuer accepted lets any issuer that shares the key speak for this API.
    """
    _declared(ctx, "iss")
    Minter(ctx).refused("a token with another iss", iss="https://attacker.invalid")
    return None


@check(
    "JWT-CLM-011",
    level=Level.MUST,
    spec=["RFC 7519 §4.1.3", "RFC 8725 §3.9"],
    needs=[Need.SIGNING_KEY, Need.CAPABILITY],
)
def wrong_audience_is_rejected(ctx: Context) -> str | None:
    """A token for another audience, or with an aud array that lacks this API, is refused.

    Impact: A token for another audience accepted lets a token stolen from one API be replayed at this one.
    """
    # RFC 7519 §4.1.3: if the principal "does not identify itself with a value in the "aud" claim
    # when this claim is present, then the JWT MUST be rejected".
    _declared(ctx, "aud")
    minter = Minter(ctx)
    minter.refused("a token for another audience", aud="another-api")
    minter.refused("a token whose aud array lacks this API", aud=["another-api", "yet-another"])
    return None


OTHER_TOKEN_TYPES = ("rt+jwt", "id+jwt", "JWT")


@check(
    "JWT-CLM-012",
    level=Level.SHOULD,
    spec=["RFC 8725 §3.11", "RFC 8725 §3.12", "RFC 9068 §4"],
    needs=[Need.SIGNING_KEY],
)
def other_token_types_are_not_access_tokens(ctx: Context) -> str | None:
    """A validly signed JWT of another type (refresh, ID token) is not accepted as an access token."""
    # RFC 9068 §4: resource servers "MUST verify that the "typ" header value is "at+jwt" or
    # "application/at+jwt" and reject tokens carrying any other type value".
    minter = Minter(ctx)
    issued = str(minter.header.get("typ", "")).lower()
    tried = []
    for typ in OTHER_TOKEN_TYPES:
        if typ.lower() == issued:
            continue  # the type this server issues its own access tokens with
        forged_header = {**minter.header, "typ": typ}
        saved, minter.header = minter.header, forged_header
        try:
            response = ctx.accepted(minter.mint())
        finally:
            minter.header = saved
        tried.append(typ)
        if is_success(response):
            raise Failure(
                f'a validly signed token with typ "{typ}" was accepted as an access token',
                expected='401: only the access-token type (e.g. "at+jwt") is accepted',
                actual=describe(response),
                hint="Type access tokens (typ at+jwt, RFC 9068) and check the type when verifying.",
            )
    return f"refused typ {', '.join(tried)}"
