"""JWT-FMT-*: what the issued access token looks like.

RFC 7515 (JWS) <https://www.rfc-editor.org/rfc/rfc7515>, RFC 7518 (JWA) <https://www.rfc-editor.org/rfc/rfc7518>,
RFC 7519 (JWT) <https://www.rfc-editor.org/rfc/rfc7519>, RFC 8725 (JWT BCP) <https://www.rfc-editor.org/rfc/rfc8725>,
RFC 9068 (JWT access tokens) <https://www.rfc-editor.org/rfc/rfc9068>.

Every check but JWT-FMT-012 inspects the baseline token offline, without a request; JWT-FMT-012 logs
in once more. A secret that JWT-FMT-010 recovers unlocks the key-assisted checks of later groups.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from functools import cache
from importlib import resources
from typing import Any, TypeGuard

from ..context import Context
from ..contract import resolve
from ..forge import HMAC_DIGESTS, b64url_decode, parse, verify_hs
from ..model import Failure, Info, Level, Need, Skip
from ..registry import check

# The JWS signature algorithms of RFC 7518 §3.1 that are cryptographically current, plus EdDSA
# (RFC 8037) and ES256K (RFC 8812). The contract names no narrower list.
ALLOWED_ALGS = frozenset(
    {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
    | {"ES256", "ES384", "ES512", "ES256K", "EdDSA"}
)
KEY_HEADERS = ("jku", "x5u", "jwk", "x5c", "crit")
DEFAULT_MAX_LIFETIME_S = 3600
CLOCK_SKEW_S = 120
DATE_RESOLUTION_S = 2.0  # seconds of slack when a lifetime is measured from a Date header
LOCAL_CLOCK_WINDOW_S = 600  # how long before this check the baseline login may have happened
MILLISECONDS_THRESHOLD = 100_000_000_000  # a NumericDate this large is milliseconds (year 5138+)
WORDLIST = ("data", "weak-secrets.txt")
MINTED = (
    "the access tokens are minted by this suite (issuer mode): their format is the issuer's, not the API's; "
    "the checks of how the API verifies them run instead"
)

PASSWORD_CLAIMS = frozenset(
    {"password", "passwd", "pwd", "pass", "hashedpassword", "passwordhash", "pwhash", "passhash", "userpassword"}
)
SECRET_CLAIMS = frozenset(
    {"secret", "clientsecret", "apikey", "apisecret", "privatekey", "secretkey", "salt", "otpsecret", "totpsecret"}
    | {"mfasecret", "refreshtoken", "signingkey"}
)
PASSWORD_HASH = re.compile(r"^\$(2[abxy]?|argon2(id|i|d)|pbkdf2[-\w]*|scrypt|[156]|sha(256|512)?)\$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DECLARED_CLAIM = re.compile(r"[`\"'](iss|aud|sub)[`\"']")

# Messages say "key", not "secret": reports redact the users' passwords wherever they occur,
# and a demo password such as "secret" would otherwise blank out the message's own words.
FRESH_SECRET = (
    "Sign with at least 32 random bytes, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`, "
    "kept out of source code; rotate it now: every token signed with the old one can be forged."
)


# -- helpers ------------------------------------------------------------------------------------


class _DuplicateMemberError(ValueError):
    """Raised when a JSON object repeats a member name."""


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for name, value in pairs:
        if name in seen:
            raise _DuplicateMemberError(name)
        seen[name] = value
    return seen


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _segment_problem(segment: str) -> str:
    if not segment:
        return "it is empty"
    if "=" in segment:
        return "it carries '=' padding"
    if any(c.isspace() for c in segment):
        return "it contains whitespace"
    if "+" in segment or "/" in segment:
        return "it uses the base64 characters '+' or '/' instead of base64url's '-' and '_'"
    odd = sorted({c for c in segment if not (c.isascii() and (c.isalnum() or c in "-_"))})
    if odd:
        return f"it contains characters outside the base64url alphabet: {''.join(odd)[:20]!r}"
    return f"its length {len(segment)} is not a valid base64url length"


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _issued_by_the_target(ctx: Context) -> None:
    """``Skip`` in issuer mode: the run minted the token, so its format says nothing of the API."""
    if ctx.state.issuer is not None:
        raise Skip(MINTED)


def _header(ctx: Context) -> dict[str, Any]:
    header = ctx.parsed.header
    if header is None:
        raise Skip("the token's header is not a JSON object: fix JWT-FMT-001 first")
    return header


def _claims(ctx: Context) -> dict[str, Any]:
    claims = ctx.parsed.claims
    if claims is None:
        raise Skip("the token's payload is not a JSON object: fix JWT-FMT-001 first")
    return claims


def _issue_time(ctx: Context) -> tuple[float, str, bool]:
    """When the server issued the baseline token, what that is read from, and whether it is the server's clock.

    The Date header of the login answer is the server's clock at issue time; without one, the local clock
    now is the best estimate (later than the login, by up to the run so far).
    """
    baseline = ctx.state.baseline
    date = baseline.response.header("date") if baseline is not None else None
    if date:
        try:
            return parsedate_to_datetime(date).timestamp(), f"the login answer's Date header ({date})", True
        except (TypeError, ValueError):
            pass
    return time.time(), "the local clock (the login answer had no usable Date header)", False


def _max_lifetime(contract: Mapping[str, Any]) -> int:
    """The contract's ``Token.expires_in`` maximum, if it declares one; else one hour (RFC 6750 §5.3)."""
    schemas = contract.get("components", {}).get("schemas", {})
    token = resolve(contract, schemas.get("Token", {}))
    expires_in = resolve(contract, token.get("properties", {}).get("expires_in", {})) if isinstance(token, dict) else {}
    maximum = expires_in.get("maximum") if isinstance(expires_in, dict) else None
    return maximum if isinstance(maximum, int) and not isinstance(maximum, bool) else DEFAULT_MAX_LIFETIME_S


def _declared_claims(contract: Mapping[str, Any]) -> set[str]:
    """The ones of iss, aud and sub that the contract says its access tokens carry."""
    texts = [str(contract.get("info", {}).get("description", ""))]
    components = contract.get("components", {})
    for scheme in components.get("securitySchemes", {}).values():
        if isinstance(scheme, Mapping):
            texts.append(str(scheme.get("description", "")))
    token = components.get("schemas", {}).get("Token", {})
    access = token.get("properties", {}).get("access_token", {}) if isinstance(token, Mapping) else {}
    if isinstance(access, Mapping):
        texts.append(str(access.get("description", "")))
    return {match.group(1) for text in texts for match in DECLARED_CLAIM.finditer(text)}


@cache
def weak_secrets() -> tuple[bytes, ...]:
    """The curated list of published and default HMAC secrets shipped with the suite (comments dropped)."""
    source = resources.files("conformance").joinpath(WORDLIST[0]).joinpath(WORDLIST[1])
    entries = []
    for line in source.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if entry and not entry.startswith("#"):
            entries.append(entry.encode("utf-8"))
    return tuple(entries)


def _walk(value: Any, path: str, depth: int = 0) -> list[tuple[str, Any]]:
    """(path, value) of every member in nested claims, bounded in depth."""
    found: list[tuple[str, Any]] = []
    if depth > 6:
        return found
    if isinstance(value, dict):
        for name, item in value.items():
            where = f"{path}.{name}" if path else str(name)
            found.append((where, item))
            found.extend(_walk(item, where, depth + 1))
    elif isinstance(value, list):
        for index, item in enumerate(value[:100]):
            found.extend(_walk(item, f"{path}[{index}]", depth + 1))
    return found


def _claim_key(path: str) -> str:
    last = path.rsplit(".", 1)[-1].split("[", 1)[0]
    return re.sub(r"[-_\s]", "", last.lower())


# -- checks -------------------------------------------------------------------------------------


@check("JWT-FMT-001", level=Level.MUST, spec=["RFC 7515 §2", "RFC 7515 §7.1", "RFC 7519 §7.2"])
def token_is_a_compact_jws(ctx: Context) -> str | None:
    """The access token is a compact JWS: three unpadded base64url segments; header and payload are JSON objects.

    Impact: A token that is not a compact JWS cannot be verified by standard libraries: resource servers end up
    parsing it by hand.
    """
    _issued_by_the_target(ctx)
    token = ctx.token()
    segments = token.split(".")
    # RFC 7515 §7.1: BASE64URL(UTF8(JWS Protected Header)) || '.' || BASE64URL(JWS Payload) || '.' ||
    # BASE64URL(JWS Signature).
    if len(segments) != 3:
        kind = " (the shape of a JWE, which the contract does not describe)" if len(segments) == 5 else ""
        raise Failure(
            f"the access token has {len(segments)} dot-separated segment(s), not 3{kind}",
            expected="header.payload.signature (RFC 7515 §7.1 compact serialization)",
            actual=f"{len(segments)} segment(s) of lengths {[len(s) for s in segments][:6]}",
            hint="Issue the token exactly as the JWT library's encode() returns it; do not wrap, prefix or split it.",
        )
    # RFC 7515 §2: base64url is "with all trailing '=' characters omitted ... and without the inclusion
    # of any line breaks, whitespace, or other additional characters".
    for name, segment in zip(("header", "payload", "signature"), segments, strict=True):
        if name == "signature" and segment == "":
            continue  # an empty signature is well-formed; JWT-FMT-002 judges whether it may be empty
        try:
            b64url_decode(segment)
        except ValueError:
            raise Failure(
                f"the {name} segment is not unpadded base64url: {_segment_problem(segment)}",
                expected="base64url without padding, whitespace or other characters (RFC 7515 §2)",
                actual=f"{name} segment of {len(segment)} characters",
                hint="Encode with base64url and strip the trailing '=' (what every JWT library does).",
            ) from None
    # RFC 7519 §7.2: "Verify that the resulting octet sequence is a UTF-8-encoded representation of a
    # completely valid JSON object conforming to RFC 7159".
    for name, segment in zip(("header", "payload"), segments[:2], strict=True):
        data = b64url_decode(segment)
        try:
            value = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_members, parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise Failure(
                f"the {name} is not UTF-8",
                expected="UTF-8 JSON (RFC 7519 §7.2, RFC 8725 §3.7)",
                actual=f"{len(data)} bytes that do not decode as UTF-8",
            ) from None
        except _DuplicateMemberError as exc:
            # RFC 7519 §4: "The Claim Names within a JWT Claims Set MUST be unique"; RFC 7515 §4 says
            # the same of Header Parameter names.
            raise Failure(
                f"the {name} repeats the member name {exc}",
                expected="unique member names (RFC 7515 §4, RFC 7519 §4)",
                actual=f"{name}: {data.decode('utf-8', 'replace')[:200]}",
                hint="Build the header and claims as a mapping, so that no name can appear twice.",
            ) from None
        except ValueError:
            raise Failure(
                f"the {name} is not valid JSON",
                expected="a JSON object (RFC 7519 §7.2)",
                actual=f"{name}: {data.decode('utf-8', 'replace')[:200]}",
            ) from None
        if not isinstance(value, dict):
            raise Failure(
                f"the {name} is JSON but not an object ({type(value).__name__})",
                expected="a JSON object (RFC 7519 §7.2)",
                actual=f"{name}: {data.decode('utf-8', 'replace')[:200]}",
            )
    return None


@check("JWT-FMT-002", level=Level.MUST, spec=["RFC 7515 §4.1.1", "RFC 8725 §3.1", "RFC 8725 §3.2"])
def token_alg_is_a_current_signature_algorithm(ctx: Context) -> str | None:
    """The token's `alg` is present, not `none`, and one of the allowed signature algorithms.

    Impact: An unsigned or unexpected-algorithm token invites resource servers to accept unsigned or confused
    tokens.
    """
    _issued_by_the_target(ctx)
    header = _header(ctx)
    parsed = ctx.parsed
    # RFC 7515 §4.1.1: "This Header Parameter MUST be present and MUST be understood and processed by
    # implementations."
    if "alg" not in header:
        raise Failure(
            "the token's header carries no alg",
            expected='an "alg" header parameter (RFC 7515 §4.1.1)',
            actual=json.dumps(header)[:200],
            hint="Let the JWT library write the header; it always sets alg.",
        )
    alg = header["alg"]
    if not isinstance(alg, str):
        raise Failure(
            f"the token's alg is a {type(alg).__name__}, not a string",
            expected="a case-sensitive algorithm name such as HS256 or RS256",
            actual=json.dumps(header)[:200],
        )
    if alg.lower() == "none":
        raise Failure(
            f"the server issues unsigned tokens (alg {alg!r})",
            expected="a signed token: alg HS256, RS256, ES256, EdDSA...",
            actual=json.dumps(header)[:200],
            hint="Sign access tokens with a key the server keeps; never issue or accept alg none.",
        )
    # RFC 8725 §3.2: "applications MUST only allow the use of cryptographically current algorithms that
    # meet the security requirements of the application."
    if alg not in ALLOWED_ALGS:
        raise Failure(
            f"the token's alg {alg!r} is not an allowed signature algorithm",
            expected="one of " + ", ".join(sorted(ALLOWED_ALGS)) + " (case-sensitive)",
            actual=json.dumps(header)[:200],
            hint="Use a registered, current JWS algorithm, spelled exactly as RFC 7518 registers it.",
        )
    if not parsed.signature:
        raise Failure(
            f"the token says alg {alg} but its signature segment is empty",
            expected=f"a {alg} signature",
            actual="header.payload. (nothing after the last dot)",
            hint="Return the token exactly as the JWT library's encode() produced it.",
        )
    digest = HMAC_DIGESTS.get(alg)
    if digest is not None and len(parsed.segments) == 3:
        try:
            size = len(b64url_decode(parsed.signature))
        except ValueError:
            return None  # not base64url: JWT-FMT-001 reports it
        if size != digest().digest_size:
            raise Failure(
                f"the {alg} signature is {size} bytes long, not the {digest().digest_size} that {alg} produces",
                expected=f"a {digest().digest_size}-byte HMAC",
                actual=f"{size} bytes",
                hint="Do not truncate or re-encode the signature.",
            )
    return None


@check("JWT-FMT-003", level=Level.SHOULD, spec=["RFC 7519 §5.1", "RFC 8725 §3.11", "RFC 9068 §2.1"])
def token_is_explicitly_typed(ctx: Context) -> str | None:
    """The token's header declares its type: `typ` is `at+jwt` (RFC 9068) or `JWT`."""
    _issued_by_the_target(ctx)
    header = _header(ctx)
    # RFC 8725 §3.11: "Explicit typing is RECOMMENDED for new uses of JWTs." RFC 9068 §2.1: "the "typ"
    # value used SHOULD be "at+jwt"".
    if "typ" not in header:
        raise Failure(
            "the token's header carries no typ",
            expected='"typ": "at+jwt" (RFC 9068 §2.1), or at least "JWT" (RFC 7519 §5.1)',
            actual=json.dumps(header)[:200],
            hint='Pass headers={"typ": "at+jwt"} to the JWT library and check it when verifying (RFC 8725 §3.11).',
        )
    typ = header["typ"]
    if not isinstance(typ, str):
        raise Failure(
            f"the token's typ is a {type(typ).__name__}, not a string",
            expected='"typ": "at+jwt"',
            actual=json.dumps(header)[:200],
        )
    # Media type names are case-insensitive, and RFC 7515 §4.1.9 lets "application/" be omitted.
    kind = typ.lower().removeprefix("application/")
    if kind == "at+jwt":
        return None
    if kind == "jwt":
        # RFC 7519 §5.1: "If present, it is RECOMMENDED that its value be "JWT"".
        return f'typ {typ!r}; "at+jwt" (RFC 9068 §2.1) would also tell access tokens from other JWTs'
    raise Failure(
        f"the token's typ {typ!r} declares another kind of token than an access token",
        expected='"at+jwt" or "JWT"',
        actual=json.dumps(header)[:200],
        hint='Type access tokens "at+jwt" so that ID tokens and other JWTs cannot be substituted for them.',
    )


@check("JWT-FMT-004", level=Level.MAY, spec=["RFC 8725 §3.10"])
def issued_header_carries_no_key_references(ctx: Context) -> str | None:
    """The issued header names no key source or critical extension (`jku`, `x5u`, `jwk`, `x5c`, `crit`)."""
    _issued_by_the_target(ctx)
    header = _header(ctx)
    present = [name for name in KEY_HEADERS if name in header]
    if present:
        # RFC 8725 §3.10: "blindly following a "jku" (JWK set URL) or "x5u" (X.509 URL) header, which may
        # contain an arbitrary URL, could result in server-side request forgery (SSRF) attacks."
        raise Info(
            f"the issued header carries {', '.join(present)}: make sure the verifier never takes a key or URL "
            "from a received header (the JWT-HDR checks probe this)"
        )
    return None


@check("JWT-FMT-005", level=Level.MUST, spec=["RFC 7519 §4.1.4", "RFC 7519 §2", "RFC 9068 §2.2"])
def token_has_an_integer_exp(ctx: Context) -> str | None:
    """The token carries `exp`, an integer NumericDate.

    Impact: A token without an expiry is a credential that never ends: stolen once, usable forever.
    """
    _issued_by_the_target(ctx)
    claims = _claims(ctx)
    if "exp" not in claims:
        raise Failure(
            "the token has no exp claim: it never expires",
            expected='"exp": <seconds since the epoch> (RFC 9068 §2.2 REQUIRED; the contract declares it)',
            actual=f"claims: {', '.join(sorted(claims)) or '(none)'}",
            hint="Set exp = now + a short lifetime when issuing, and require it when verifying.",
        )
    exp = claims["exp"]
    # RFC 7519 §4.1.4: "Its value MUST be a number containing a NumericDate value."
    if not _is_number(exp):
        raise Failure(
            f"the token's exp is a {type(exp).__name__} ({json.dumps(exp)[:60]}), not a NumericDate",
            expected="a JSON number of seconds since the epoch",
            actual=f'"exp": {json.dumps(exp)[:60]}',
            hint="Write exp as a number (PyJWT converts a datetime for you); never as a string or date text.",
        )
    # RFC 7519 §2 allows non-integer NumericDates, but many verifiers parse exp into an integer.
    if isinstance(exp, float):
        raise Failure(
            f"the token's exp is written as a non-integer number ({json.dumps(exp)})",
            expected="an integer NumericDate",
            actual=f'"exp": {json.dumps(exp)}',
            hint="Round exp to whole seconds (int(...)) before signing.",
            level=Level.SHOULD,
        )
    return None


@check("JWT-FMT-006", level=Level.MUST, spec=["RFC 7519 §4.1.2", "RFC 9068 §2.2", "contract"])
def token_sub_identifies_the_user(ctx: Context) -> str | None:
    """The token carries `sub`, a non-empty string that identifies the logged-in user.

    Impact: Resource servers identify the caller by `sub`; without it they guess from other claims.
    """
    _issued_by_the_target(ctx)
    claims = _claims(ctx)
    if "sub" not in claims:
        # RFC 7519 §4.1.2: "Use of this claim is OPTIONAL"; RFC 9068 §2.2 makes it REQUIRED of at+jwt tokens.
        declared = _sub_declarations(ctx, _header(ctx))
        raise Failure(
            "the token has no sub claim"
            + (f" ({' and '.join(declared)} require(s) it)" if declared else " (nothing declares it: a warning)"),
            expected='"sub": the user the token was issued to (RFC 9068 §2.2 REQUIRED of at+jwt tokens)',
            actual=f"claims: {', '.join(sorted(claims)) or '(none)'}",
            hint="Put the user's stable identifier (username or id, as a string) in sub.",
            level=Level.MUST if declared else Level.SHOULD,
        )
    sub = claims["sub"]
    # RFC 7519 §4.1.2: "The "sub" value is a case-sensitive string containing a StringOrURI value."
    if not isinstance(sub, str) or not sub:
        raise Failure(
            f"the token's sub is {'an empty string' if sub == '' else 'a ' + type(sub).__name__}, "
            "not a non-empty string",
            expected="a non-empty string",
            actual=f'"sub": {json.dumps(sub)[:80]}',
            hint="Convert ids to strings before signing (str(user.id)); PyJWT >= 2.10 refuses a non-string sub.",
        )
    if ctx.config.token_run:
        if sub == ctx.config.username:
            return None
        return f"sub {sub!r} taken as an opaque user id (a token run: no second user to cross-check it)"
    if sub == ctx.credentials().username:
        return None
    if ctx.state.credentials("second") is None:
        return f"sub {sub!r} is not the login name; taken as an opaque user id (add users.second to cross-check it)"
    try:
        other = parse(ctx.token("second")).claims or {}
    except Skip:
        return f"sub {sub!r} is not the login name; taken as an opaque user id (the second user could not log in)"
    if other.get("sub") == sub:
        raise Failure(
            f"the tokens of two different users carry the same sub {sub!r}",
            expected="a sub that identifies the user the token was issued to",
            actual=f"{ctx.credentials().username} and {ctx.credentials('second').username}: sub {sub!r}",
            hint="Set sub to the authenticated user's own identifier.",
        )
    return f"sub {sub!r} is an opaque user id (distinct from the second user's)"


@check("JWT-FMT-007", level=Level.SHOULD, spec=["RFC 9068 §2.2", "RFC 7519 §4.1.6"])
def token_iat_matches_the_server_clock(ctx: Context) -> str | None:
    """The token carries `iat`, within clock skew of the time the server issued it."""
    _issued_by_the_target(ctx)
    claims = _claims(ctx)
    if "iat" not in claims:
        raise Failure(
            "the token has no iat claim",
            expected='"iat": the issue time in seconds since the epoch (RFC 9068 §2.2)',
            actual=f"claims: {', '.join(sorted(claims)) or '(none)'}",
            hint="Set iat = now when issuing (PyJWT: add it to the claims); it bounds the token's age.",
        )
    iat = claims["iat"]
    # RFC 7519 §4.1.6: "Its value MUST be a number containing a NumericDate value."
    if not _is_number(iat):
        raise Failure(
            f"the token's iat is a {type(iat).__name__}, not a NumericDate",
            expected="a JSON number of seconds since the epoch",
            actual=f'"iat": {json.dumps(iat)[:60]}',
            hint="Write iat as a number of seconds.",
            level=Level.MUST,
        )
    issued, source, server_clock = _issue_time(ctx)
    earliest = issued - CLOCK_SKEW_S - (0 if server_clock else LOCAL_CLOCK_WINDOW_S)
    if earliest <= iat <= issued + CLOCK_SKEW_S:
        return None
    hint = "Take iat from a synchronised clock (NTP) at the moment of issue."
    if iat > MILLISECONDS_THRESHOLD:
        hint = "iat looks like milliseconds: NumericDate counts seconds (divide by 1000)."
    raise Failure(
        f"the token's iat is {iat - issued:+.0f} s away from {source}",
        expected=f"within {CLOCK_SKEW_S} s of the issue time"
        + ("" if server_clock else f" (or up to {LOCAL_CLOCK_WINDOW_S} s before it: no Date header to go by)"),
        actual=f'"iat": {json.dumps(iat)}',
        hint=hint,
    )


@check("JWT-FMT-008", level=Level.SHOULD, spec=["RFC 6750 §5.3", "contract"])
def token_lifetime_is_short(ctx: Context) -> str | None:
    """The token's lifetime (`exp` minus `iat`, or minus the issue time) is at most the contract maximum (1 hour)."""
    _issued_by_the_target(ctx)
    claims = _claims(ctx)
    maximum = _max_lifetime(ctx.state.contract)
    if "exp" not in claims:
        raise Failure(
            "the token has no exp: its lifetime is unbounded",
            expected=f"a lifetime of at most {maximum} s",
            actual="no exp claim",
            hint="Set exp = now + a short lifetime (the reference server uses 15 minutes).",
        )
    exp = claims["exp"]
    if not _is_number(exp):
        raise Skip("the token's exp is not a NumericDate, so its lifetime is unknown: fix JWT-FMT-005 first")
    iat = claims.get("iat")
    slack = 0.0
    if _is_number(iat):
        start, basis = float(iat), "exp - iat"
    else:
        start, _source, server_clock = _issue_time(ctx)
        basis = "exp - the login answer's Date" if server_clock else "exp - the local time, no iat or Date to go by"
        # A Date header counts whole seconds (truncated), and exp may be computed a moment after it.
        slack = DATE_RESOLUTION_S
    lifetime = exp - start
    # RFC 6750 §5.3: "Token servers SHOULD issue short-lived (one hour or less) bearer tokens".
    if lifetime <= 0:
        raise Failure(
            f"the token is already expired when issued ({basis} = {lifetime:.0f} s)",
            expected="exp after the issue time",
            actual=f'"exp": {json.dumps(exp)}',
            hint="Compute exp as now + lifetime, in seconds, from the same clock as iat.",
        )
    if lifetime > maximum + slack:
        hint = "Shorten the access-token lifetime (use a refresh token for long sessions)."
        if exp > MILLISECONDS_THRESHOLD:
            hint = "exp looks like milliseconds: NumericDate counts seconds (divide by 1000)."
        raise Failure(
            f"the token lives {lifetime:.0f} s ({basis}), longer than {maximum} s",
            expected=f"a lifetime of at most {maximum} s",
            actual=f"{lifetime:.0f} s",
            hint=hint,
        )
    return f"lifetime {lifetime:.0f} s ({basis})"


@check("JWT-FMT-009", level=Level.MUST, spec=["WSTG-SESS-010", "RFC 7519 §12"])
def token_carries_no_secrets(ctx: Context) -> str | None:
    """The token's claims carry no password material or other credentials (anyone holding it can read them).

    Impact: Anyone who holds a token can read its claims: password material in it is a leak.
    """
    _issued_by_the_target(ctx)
    claims = _claims(ctx)
    primary = ctx.config.primary
    password = primary.password if primary is not None else None  # a token run knows no password
    passwords: list[str] = []
    secrets: list[str] = []
    personal: list[str] = []
    for path, value in _walk(claims, ""):
        key = _claim_key(path)
        text = value if isinstance(value, str) else ""
        if text and (text == password or PASSWORD_HASH.match(text) or key in PASSWORD_CLAIMS):
            passwords.append(path)
        elif text and key in SECRET_CLAIMS:
            secrets.append(path)
        elif key == "email" or (isinstance(value, str) and EMAIL.match(value)):
            personal.append(path)
    # The claims of a signed JWT are only base64url-encoded: anyone who holds the token reads them.
    if passwords:
        raise Failure(
            f"the token carries password material in {', '.join(sorted(set(passwords)))}",
            expected="no password, password hash or other credential in the claims",
            actual=f"claim(s) {', '.join(sorted(set(passwords)))} (values withheld)",
            hint="Build the claims from an allowlist (sub, exp, iat...), never from the user record.",
        )
    if secrets:
        raise Failure(
            f"the token carries credential-like claims: {', '.join(sorted(set(secrets)))}",
            expected="no secrets in the claims (they are readable by anyone holding the token)",
            actual=f"claim(s) {', '.join(sorted(set(secrets)))} (values withheld)",
            hint="Keep secrets server-side; put only identifiers in the token.",
            level=Level.SHOULD,
        )
    if personal:
        raise Info(
            f"the token carries personal data (an email address) in {', '.join(sorted(set(personal)))}; "
            "its claims are readable by anyone holding it"
        )
    return None


@check("JWT-FMT-010", level=Level.MUST, spec=["RFC 7518 §3.2", "RFC 8725 §2.2", "RFC 8725 §3.5", "ASVS 9.1"])
def token_secret_is_not_a_published_one(ctx: Context) -> str | None:
    """An HMAC-signed token's key is none of the published, default or guessable keys (offline test).

    Impact: A published or guessable HMAC key lets anyone mint tokens for any user.
    """
    _issued_by_the_target(ctx)
    parsed = ctx.parsed
    alg = parsed.alg
    if alg is None or alg.lower() == "none":
        raise Skip("the token is not signed (see JWT-FMT-002): there is no key to test")
    if alg not in HMAC_DIGESTS:
        raise Skip(f"the token is signed with {alg}, not an HMAC: there is no shared key to guess offline")
    if len(parsed.segments) != 3 or not parsed.signature:
        raise Skip("the token is not a well-formed compact JWS (see JWT-FMT-001)")
    # RFC 8725 §3.5: "human-memorizable passwords MUST NOT be directly used as the key to a keyed-MAC
    # algorithm such as "HS256"."
    if verify_hs(parsed, b""):
        ctx.state.cracked_secret = b""
        raise Failure(
            f"the token's {alg} signature verifies with an EMPTY key: anyone can forge tokens",
            expected="a signature no published or guessable secret reproduces",
            actual="signature reproduced with the empty key",
            hint=FRESH_SECRET,
        )
    for number, candidate in enumerate(weak_secrets(), start=1):
        if verify_hs(parsed, candidate):
            ctx.state.cracked_secret = candidate
            # The key itself is never printed: reports name its list entry, and tokens signed with it
            # (the key-assisted checks of later groups) appear as placeholders built with ${CRACKED_KEY}.
            raise Failure(
                f"the token's {alg} signature verifies with a well-known published key "
                f"(list entry #{number}, length {len(candidate)}): anyone can forge tokens this server accepts",
                expected="a signature no published or guessable secret reproduces",
                actual=f"signature reproduced with word-list entry #{number} ({len(candidate)} bytes)"
                " (shown as ${CRACKED_KEY})",
                hint=FRESH_SECRET,
            )
    key = ctx.config.keys.hs_secret
    if key is not None:
        size = HMAC_DIGESTS[alg]().digest_size
        # RFC 7518 §3.2: "A key of the same size as the hash output (for instance, 256 bits for "HS256")
        # or larger MUST be used with this algorithm."
        if len(key.encode()) < size and verify_hs(parsed, key.encode()):
            raise Failure(
                f"the configured {alg} key is {len(key.encode())} bytes, shorter than the {size} bytes {alg} requires",
                expected=f"a key of at least {size} bytes (RFC 7518 §3.2)",
                actual=f"{len(key.encode())} bytes",
                hint=FRESH_SECRET,
            )
    return f"none of {len(weak_secrets()) + 1} published or default HMAC keys reproduces the signature"


def _is_access_token_profile(header: Mapping[str, Any]) -> bool:
    typ = header.get("typ")
    return isinstance(typ, str) and typ.lower().removeprefix("application/") == "at+jwt"


def _sub_declarations(ctx: Context, header: Mapping[str, Any]) -> list[str]:
    """Who requires the token to carry sub: the target's contract, or the token's own typ at+jwt."""
    declared = [ctx.state.contract.source] if "sub" in _declared_claims(ctx.state.contract) else []
    if _is_access_token_profile(header):
        declared.append('the token\'s own typ "at+jwt" (RFC 9068 §2.2)')
    return declared


def _claim_declarations(ctx: Context, header: Mapping[str, Any]) -> dict[str, list[str]]:
    """iss / aud -> who requires the token to carry it: the config, the target's contract, the token's own typ."""
    declared: dict[str, list[str]] = {"iss": [], "aud": []}
    for name, value in (("iss", ctx.config.issuer), ("aud", ctx.config.audience)):
        if value is not None:
            declared[name].append("the config")
    for name in _declared_claims(ctx.state.contract) - {"sub"}:
        declared[name].append(ctx.state.contract.source)
    # RFC 9068 §2.2: iss, exp, aud, sub, iat and jti are REQUIRED of a JWT access token (typ at+jwt).
    if _is_access_token_profile(header):
        for name in declared:
            declared[name].append('the token\'s own typ "at+jwt" (RFC 9068 §2.2)')
    return {name: reasons for name, reasons in declared.items() if reasons}


def _malformed(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims[name]
    # RFC 7519 §4.1.1: "The "iss" value is a case-sensitive string containing a StringOrURI value."
    if name == "iss" and (not isinstance(value, str) or not value):
        return f'"iss": {json.dumps(value)[:80]} is not a non-empty string (a StringOrURI naming the issuer)'
    # RFC 7519 §4.1.3: aud is an array of StringOrURI, or a single one.
    audiences = value if isinstance(value, list) else [value]
    if name == "aud" and (not audiences or not all(isinstance(a, str) and a for a in audiences)):
        return f'"aud": {json.dumps(value)[:80]} is neither a non-empty string nor an array of them'
    return None


def _unexpected(claims: Mapping[str, Any], name: str, expected: str | None) -> str | None:
    value = claims[name]
    if expected is None or value == expected or (isinstance(value, list) and expected in value):
        return None
    return f'"{name}": {json.dumps(value)[:80]}, not the configured {json.dumps(expected)}'


@check(
    "JWT-FMT-011",
    level=Level.MUST,
    spec=["RFC 8725 §3.8", "RFC 8725 §3.9", "RFC 9068 §2.2", "RFC 7519 §4.1.1", "RFC 7519 §4.1.3", "contract"],
    needs=[Need.CAPABILITY],
)
def token_names_issuer_and_audience(ctx: Context) -> str | None:
    """The token carries the `iss` and `aud` claims declared for it, well-formed and with the configured values.

    Declared by the config (``claims.iss``/``claims.aud``), by the target's own contract, or by the
    token's own ``typ: at+jwt`` (RFC 9068 §2.2 makes them REQUIRED of that profile). Undeclared
    and absent is an observation: nothing lets a client or a resource server expect them.

    Impact: a token without the audience it was meant for can be replayed at another API that trusts the
    same issuer (RFC 8725 §3.9).
    """
    _issued_by_the_target(ctx)
    header, claims = _header(ctx), _claims(ctx)
    declared = _claim_declarations(ctx, header)
    missing = [name for name in declared if name not in claims]
    # RFC 8725 §3.9: "the JWT MUST contain an "aud" (audience) claim that can be used to determine whether
    # the JWT is being used by an intended party or was substituted by an attacker at an unintended party."
    if missing:
        reasons = list(dict.fromkeys(reason for name in missing for reason in declared[name]))
        only_contract = all(reason == ctx.state.contract.source for reason in reasons)
        raise Failure(
            f"the token lacks the {' and '.join(missing)} claim(s) that {' and '.join(reasons)} declare(s)",
            expected=", ".join(declared) + " present (RFC 8725 §3.8-3.9)",
            actual=f"claims: {', '.join(sorted(claims)) or '(none)'}",
            hint="Issue iss and aud, and verify both (PyJWT: issuer=..., audience=...).",
            dialect=only_contract,  # the FastAPI dialect issues neither: relaxed only when just the contract asks
        )
    present = [name for name in ("iss", "aud") if name in claims]
    problems = [problem for name in present if (problem := _malformed(claims, name))]
    expected = {"iss": ctx.config.issuer, "aud": ctx.config.audience}
    problems += [problem for name in present if (problem := _unexpected(claims, name, expected[name]))]
    if problems:
        raise Failure(
            "; ".join(problems),
            expected="iss a StringOrURI, aud a StringOrURI or an array of them, with the values declared",
            actual="; ".join(problems),
            hint="Set iss to the issuer's name or URL and aud to the API's identifier, as strings.",
            level=Level.MUST if declared else Level.SHOULD,
        )
    if not present:
        raise Info(
            "the token carries neither iss nor aud, and nothing declares them (no claims in the config, none in "
            f"{ctx.state.contract.source}, typ is not at+jwt): RFC 8725 §3.8-3.9 recommend both, so that a "
            "token issued for one API cannot be replayed at another"
        )
    shown = [f"{name} {json.dumps(claims[name])[:80]}" for name in present]
    return "; ".join(shown + [f"no {name} (nothing declares it)" for name in ("iss", "aud") if name not in claims])


@check("JWT-FMT-012", level=Level.MAY, spec=["RFC 7519 §4.1.7"])
def each_login_issues_a_distinct_token(ctx: Context) -> str | None:
    """Two logins yield two distinct tokens, and distinct `jti` values when `jti` is used."""
    first = ctx.token()
    login = ctx.login()
    if login.token is None:
        raise Skip(
            f"a second login answered HTTP {login.response.status}: rerun when the server allows two logins in a row"
        )
    if login.token == first:
        raise Info(
            "two logins returned the identical token: a per-token jti (or a fresh iat) lets tokens be told apart, "
            "logged and revoked one by one"
        )
    jti_first = (parse(first).claims or {}).get("jti")
    jti_second = (parse(login.token).claims or {}).get("jti")
    # RFC 7519 §4.1.7: the jti "value MUST be assigned in a manner that ensures that there is a negligible
    # probability that the same value will be accidentally assigned to a different data object".
    if jti_first is not None and jti_first == jti_second:
        raise Info(f"two distinct tokens share the jti {json.dumps(jti_first)[:60]}: jti values should be unique")
    return None
