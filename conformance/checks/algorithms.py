"""JWT-ALG-*: algorithm handling. RFC 7515 §4.1.1, §4.1.11, RFC 7518 §3.6 and RFC 8725 §3.1-3.2
<https://www.rfc-editor.org/rfc/rfc8725#section-3.1>.

Tokens keep the baseline token's claims; only the header (and so the signature's meaning) changes.
Variants that must carry a VALID signature need the server's key: its HMAC key (--hs-secret,
keys.hs_secret, or cracked offline by JWT-FMT-010), its private key (--private-key-file), or the
test issuer's key in issuer mode. Without one those checks only send what needs no key and end in
SKIP, never PASS.
"""

from __future__ import annotations

import json
from typing import Any

import jwt

from ..context import Context
from ..forge import HMAC_DIGESTS, ParsedToken, b64url_encode, encode_json, hmac_sign, raw_header, unsigned, with_header
from ..model import Level, Need, Skip
from ..registry import check
from ..signing import Sign, signed, signed_raw, signer_for
from ._expect import expect_refused

HINT = "Pin the accepted algorithm(s) on the server; never take the algorithm from the token header."
NO_KEY = (
    "the signed variants need the server's key: pass --hs-secret or --private-key-file (or keys.* in the config "
    "file), or run in issuer mode (--issuer-keys DIR); the unsigned variants were refused"
)


def _refused_all(ctx: Context, variants: list[tuple[str, str]], allowed: tuple[int, ...] = (401,)) -> None:
    for what, token in variants:
        expect_refused(ctx.accepted(token), what=what, hint=HINT, allowed=allowed)


def _header(parsed: ParsedToken) -> dict[str, object]:
    return dict(parsed.header or {"typ": "JWT"})


def _signer(ctx: Context) -> Sign | None:
    """A signer with the server's own key and algorithm, when the run holds the key."""
    return signer_for(ctx, ctx.parsed)


def _signed(parsed: ParsedToken, header: dict[str, object], key: bytes, alg: str) -> str:
    signing_input = f"{encode_json(header)}.{parsed.segments[1]}"
    return f"{signing_input}.{hmac_sign(signing_input, key, alg)}"


@check("JWT-ALG-001", level=Level.MUST, spec=["RFC 7518 §3.6", "RFC 8725 §3.2"])
def alg_none_is_rejected(ctx: Context) -> str | None:
    """An unsecured token (alg "none", empty signature) is refused.

    Impact: An unsigned token accepted lets anyone mint tokens.
    """
    # RFC 7518 §3.6: implementations "MUST NOT accept Unsecured JWSs by default".
    parsed = ctx.parsed
    _refused_all(ctx, [('an alg "none" token', unsigned({**_header(parsed), "alg": "none"}, parsed.claims or {}))])
    return None


@check("JWT-ALG-002", level=Level.MUST, spec=["RFC 7518 §3.6", "RFC 8725 §3.2"])
def alg_none_in_other_cases_is_rejected(ctx: Context) -> str | None:
    """Unsecured tokens with alg "None", "NONE" or "nOnE" are refused.

    Impact: As JWT-ALG-001, through a case variant of none.
    """
    parsed = ctx.parsed
    claims = parsed.claims or {}
    variants = [
        (f'an alg "{alg}" token', unsigned({**_header(parsed), "alg": alg}, claims)) for alg in ("None", "NONE", "nOnE")
    ]
    _refused_all(ctx, variants)
    return None


@check("JWT-ALG-003", level=Level.MUST, spec=["RFC 7518 §3.6", "RFC 8725 §3.2"])
def alg_none_with_a_signature_is_rejected(ctx: Context) -> str | None:
    """alg "none" with the original signature kept, or with a fake one, is refused.

    Impact: As JWT-ALG-001, with a leftover signature that a sloppy verifier ignores.
    """
    parsed = ctx.parsed
    header = {**_header(parsed), "alg": "none"}
    _refused_all(
        ctx,
        [
            ('alg "none" with the original signature', with_header(parsed, header)),
            ('alg "none" with the signature "AAAA"', with_header(parsed, header, signature="AAAA")),
        ],
    )
    return None


@check("JWT-ALG-004", level=Level.MUST, spec=["RFC 7515 §4.1.1"])
def malformed_alg_values_are_rejected(ctx: Context) -> str | None:
    """alg empty, null, missing, padded, lower-case, with a NUL, or an array: refused, never a 5xx.

    Impact: A malformed alg accepted or answered with a 5xx is a verifier that picks algorithms from attacker
    input.
    """
    # RFC 7515 §4.1.1: alg "MUST be present", and its value is "a case-sensitive ASCII string".
    parsed = ctx.parsed
    alg = parsed.alg or "HS256"
    base = _header(parsed)
    missing = {k: v for k, v in base.items() if k != "alg"}
    headers: list[tuple[str, dict[str, object]]] = [
        ("alg empty", {**base, "alg": ""}),
        ("alg null", {**base, "alg": None}),
        ("alg missing", missing),
        ("alg with spaces", {**base, "alg": f" {alg} "}),
        ("alg in lower case", {**base, "alg": alg.lower()}),
        ("alg with a NUL", {**base, "alg": alg + "\u0000"}),
        ("alg as an array", {**base, "alg": [alg]}),
    ]
    _refused_all(ctx, [(what, with_header(parsed, header)) for what, header in headers], allowed=(400, 401))
    return None


FAMILIES = {"HS": ("HS256", "HS384", "HS512"), "RS": ("RS256", "RS384", "RS512"), "ES": ("ES256", "ES384", "ES512")}


@check("JWT-ALG-005", level=Level.MUST, spec=["RFC 8725 §3.1"])
def alg_swapped_within_its_family_is_rejected(ctx: Context) -> str | None:
    """The header's alg swapped for another of its family (HS256 → HS512) with the signature kept is refused.

    Impact: A verifier that trusts the header's alg can be steered to a weaker or wrong algorithm.
    """
    parsed = ctx.parsed
    alg = parsed.alg or ""
    family = FAMILIES.get(alg[:2], ())
    if alg not in family:
        raise Skip(f"the target signs with {alg or 'no algorithm'}: this check covers HS*, RS* and ES*")
    swapped = [other for other in family if other != alg]
    _refused_all(
        ctx,
        [
            (f"alg {other} with a {alg} signature", with_header(parsed, {**_header(parsed), "alg": other}))
            for other in swapped
        ],
    )
    return None


# Algorithms that sign with a key of the same type: a verifier that reads alg from the header accepts them all.
SAME_KEY = {
    "HS": ("HS256", "HS384", "HS512"),
    "RS": ("RS256", "RS384", "RS512", "PS256"),
    "PS": ("PS256", "PS384", "PS512", "RS256"),
    "ES": ("ES256", "ES384", "ES512"),
}


@check("JWT-ALG-006", level=Level.SHOULD, spec=["RFC 7519 §7.2", "RFC 8725 §3.1"], needs=[Need.SIGNING_KEY])
def unlisted_algorithms_are_rejected_even_when_validly_signed(ctx: Context) -> str | None:
    """A token validly signed with the server's key but another algorithm of its family (HS512, RS512) is refused."""
    # RFC 8725 §3.1: "libraries MUST enable the caller to specify a supported set of algorithms and
    # MUST NOT use any other algorithms when performing cryptographic operations."
    parsed = ctx.parsed
    alg = parsed.alg or ""
    others = [other for other in SAME_KEY.get(alg[:2], ()) if other != alg]
    if not others:
        raise Skip(f"the target signs with {alg or 'no algorithm'}: no other algorithm signs with its key")
    for other in others:
        sign = signer_for(ctx, parsed, other)
        if sign is None:
            raise Skip(NO_KEY.split(";")[0])
        token = signed({**_header(parsed), "alg": other}, parsed.segments[1], sign)
        expect_refused(ctx.accepted(token), what=f"a validly signed {other} token (the server issues {alg})", hint=HINT)
    return f"refused {', '.join(others)}"


def _public_key_encodings(jwk: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The bytes a confused server might use as an HMAC key: the public key in every common encoding."""
    from cryptography.hazmat.primitives import serialization as s

    key = jwt.PyJWK(jwk).key
    spki = key.public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo)
    encodings = [
        ("SPKI PEM", spki),
        ("SPKI PEM without the final newline", spki.rstrip(b"\n")),
        ("DER", key.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)),
        ("JWK JSON", json.dumps(jwk, separators=(",", ":")).encode()),
    ]
    if jwk.get("kty") == "RSA":
        pkcs1 = key.public_bytes(s.Encoding.PEM, s.PublicFormat.PKCS1)
        encodings += [("PKCS#1 PEM", pkcs1), ("PKCS#1 PEM without the final newline", pkcs1.rstrip(b"\n"))]
    return encodings


@check(
    "JWT-ALG-007", level=Level.MUST, spec=["RFC 8725 §2.1", "RFC 8725 §3.1", "CVE-2016-10555"], needs=[Need.PUBLIC_KEY]
)
def public_key_as_hmac_secret_is_rejected(ctx: Context) -> str | None:
    """HS256 tokens MACed with the server's public key (PEM, PKCS#1, DER, JWK JSON) are refused.

    Impact: A public key used as an HMAC secret lets anyone who reads the JWK Set mint tokens.
    """
    from ._jwks import verification_keys

    parsed = ctx.parsed
    if parsed.alg in HMAC_DIGESTS or parsed.alg is None:
        raise Skip(f"the target signs with {parsed.alg or 'no algorithm'}: this applies to public-key algorithms")
    _, keys = verification_keys(ctx)
    variants = []
    for jwk in keys:
        try:
            encodings = _public_key_encodings(jwk)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError):
            continue  # JWT-JWKS-003 reports keys that do not load
        header = {**_header(parsed), "alg": "HS256"}
        if "kid" in jwk:
            header["kid"] = jwk["kid"]
        for name, secret in encodings:
            variants.append((f"HS256 keyed with the public key ({name})", _signed(parsed, header, secret, "HS256")))
    if not variants:
        raise Skip("the published keys could not be loaded (see JWT-JWKS-003)")
    _refused_all(ctx, variants)
    return f"{len(variants)} confused tokens refused"


@check("JWT-ALG-008", level=Level.MUST, spec=["RFC 7515 §4.1.11", "RFC 7797 §3"], needs=[Need.SIGNING_KEY])
def unknown_critical_headers_are_rejected(ctx: Context) -> str | None:
    """Validly signed tokens with crit ["x-custom"], b64:false with crit ["b64"], or crit [] are refused.

    Impact: Ignoring an unknown crit extension means processing a token whose meaning the server does not know.
    """
    # RFC 7515 §4.1.11: "If any of the listed extension Header Parameters are not understood and
    # supported by the recipient, then the JWS is invalid."
    parsed = ctx.parsed
    base = _header(parsed)
    headers: list[tuple[str, dict[str, object]]] = [
        ('crit ["x-custom"]', {**base, "crit": ["x-custom"], "x-custom": True}),
        ('b64 false with crit ["b64"]', {**base, "b64": False, "crit": ["b64"]}),
        ("crit []", {**base, "crit": []}),
    ]
    sign = _signer(ctx)
    if sign is None:
        _refused_all(ctx, [(f"{what} (original signature)", with_header(parsed, h)) for what, h in headers])
        raise Skip(NO_KEY)
    payload = parsed.segments[1]
    _refused_all(ctx, [(f"a validly signed token with {what}", signed(h, payload, sign)) for what, h in headers])
    return None


@check("JWT-ALG-009", level=Level.MUST, spec=["RFC 7515 §4", "RFC 7515 §5.2"], needs=[Need.SIGNING_KEY])
def duplicate_header_members_are_rejected(ctx: Context) -> str | None:
    """A validly signed header with duplicate members {"alg":"HS256",...,"alg":"none"} is refused.

    Impact: Duplicate header members let an attacker show one alg to a filter and another to the verifier.
    """
    # RFC 7515 §4: "The Header Parameter names within the JOSE Header MUST be unique; JWS parsers MUST
    # either reject JWSs with duplicate Header Parameter names or use a JSON parser that returns only
    # the lexically last duplicate member name".
    parsed = ctx.parsed
    alg = parsed.alg or "HS256"
    rest = {k: v for k, v in _header(parsed).items() if k != "alg"}
    members = ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in rest.items())
    duplicate = "{" + f'"alg":{json.dumps(alg)}' + (f",{members}" if members else "") + ',"alg":"none"}'
    sign = _signer(ctx)
    if sign is None:
        _refused_all(ctx, [("duplicate alg members (original signature)", raw_header(duplicate, parsed))])
        raise Skip(NO_KEY)
    validly = signed_raw(duplicate.encode(), parsed.segments[1], sign)
    _refused_all(ctx, [("a validly signed header with duplicate alg members", validly)])
    return None


@check("JWT-ALG-010", level=Level.MUST, spec=["RFC 7519 §7.2", "RFC 8725 §3.7"])
def odd_serializations_are_rejected(ctx: Context) -> str | None:
    """Headers with a BOM, leading whitespace or invalid UTF-8, a JWE-shaped value, or JSON serialization: refused.

    Impact: A token in another serialization or with a mangled header accepted shows a parser attackers can
    confuse.
    """
    # Black-box: the variants keep the original signature, which no longer matches. (Signed with the
    # real key they would prove nothing: RFC 8259 §8.1 lets parsers ignore a BOM, and whitespace is JSON.)
    parsed = ctx.parsed
    header_json = json.dumps(_header(parsed), separators=(",", ":")).encode()

    def variant(raw: bytes) -> str:
        return raw_header(raw, parsed)

    jws_json = json.dumps(
        {"payload": parsed.segments[1], "protected": parsed.segments[0], "signature": parsed.signature}
    )
    variants = [
        ("a header with a UTF-8 BOM", variant(b"\xef\xbb\xbf" + header_json)),
        ("a header with leading whitespace", variant(b" \n" + header_json)),
        ("a header with invalid UTF-8", variant(header_json[:-1] + b',"x":"\xff"}')),
        ("a five-segment JWE-shaped value", f"{parsed.segments[0]}.{b64url_encode(b'k')}.AA.{parsed.segments[1]}.AA"),
        ("a JWS JSON serialization", jws_json),
    ]
    _refused_all(ctx, variants, allowed=(400, 401))
    return None
