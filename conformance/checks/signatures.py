"""JWT-SIG-*: forged and damaged signatures. RFC 7515 §5.2 <https://www.rfc-editor.org/rfc/rfc7515#section-5.2>,
RFC 7518 §3 and RFC 8725 §3.1-3.3.

Every forgery keeps the baseline token's claims, so that only the signature is wrong: if one is
accepted, the server does not verify signatures as it must.
"""

from __future__ import annotations

from ..context import Context
from ..forge import HMAC_DIGESTS, b64url_decode, b64url_encode, encode_json, flip_last_bit, hmac_sign, with_claims
from ..model import Failure, Info, Level, Need, Skip
from ..registry import check
from ._expect import describe, expect_refused, is_success

HINT = "Verify the signature of every token with the server's key before reading any claim."
# DER encoding of the ECDSA signature r=0, s=0 (CVE-2022-21449, "psychic signatures").
DER_ZERO_SIGNATURE = "MAYCAQACAQA"
NUL = bytes(1)
EC_SIGNATURE_BYTES = {"ES256": 64, "ES384": 96, "ES512": 132}


def _refused_all(ctx: Context, variants: list[tuple[str, str]], allowed: tuple[int, ...] = (401,)) -> None:
    for what, token in variants:
        expect_refused(ctx.accepted(token), what=what, hint=HINT, allowed=allowed)


@check("JWT-SIG-001", level=Level.MUST, spec=["RFC 7515 §5.2", "RFC 8725 §3.3"])
def altered_payload_is_rejected(ctx: Context) -> str | None:
    """A token whose payload was changed (sub set to another user) but keeps its signature is refused.

    Impact: A server that accepts a changed payload lets anyone become any user.
    """
    parsed = ctx.parsed
    if parsed.claims is None or len(parsed.segments) != 3:
        raise Skip("the issued token is not a JWS with a JSON payload (see JWT-FMT-001)")
    try:
        other = ctx.credentials("second").username
    except Skip:
        other = "admin"
    forged = with_claims(parsed, {**parsed.claims, "sub": other})
    response = ctx.accepted(forged)
    if is_success(response):
        body = response.json()
        served_other = isinstance(body, dict) and body.get("username") == other
        impact = " and served the other user's record" if served_other else ""
        raise Failure(
            f"a token with sub changed to {other!r} and the original signature was ACCEPTED{impact}",
            expected="401: the signature no longer matches",
            actual=describe(response),
            hint=HINT,
            security=True,
        )
    expect_refused(response, what="a token with an altered payload", hint=HINT)
    return None


@check("JWT-SIG-002", level=Level.MUST, spec=["RFC 7515 §5.2"])
def corrupted_signature_is_rejected(ctx: Context) -> str | None:
    """A token with its signature cut short, or one bit flipped, is refused.

    Impact: A signature that is not verified exactly is no signature: tokens can be forged.
    """
    parsed = ctx.parsed
    if not parsed.signature:
        raise Skip("the issued token has no signature (see JWT-FMT-002)")
    head = parsed.signing_input
    _refused_all(
        ctx,
        [
            ("a token with the last 4 signature characters cut off", f"{head}.{parsed.signature[:-4]}"),
            ("a token with one signature bit flipped", f"{head}.{flip_last_bit(parsed.signature)}"),
        ],
    )
    return None


@check("JWT-SIG-003", level=Level.MUST, spec=["RFC 7515 §5.2", "CVE-2020-28042"])
def stripped_signature_is_rejected(ctx: Context) -> str | None:
    """A token with its signature removed ('header.payload.') and the original alg is refused.

    Impact: Accepting a token without its signature lets anyone mint tokens.
    """
    _refused_all(ctx, [("a token without its signature", f"{ctx.parsed.signing_input}.")])
    return None


@check("JWT-SIG-004", level=Level.MUST, spec=["RFC 7519 §7.2", "RFC 7515 §7.1"])
def malformed_segment_counts_are_rejected(ctx: Context) -> str | None:
    """Tokens with 2, 4 or 5 segments, or an empty or 'null' signature part, are refused without a 5xx.

    Impact: A malformed token accepted, or answered with a 5xx, is a parser attackers can confuse or crash.
    """
    parsed = ctx.parsed
    head, sig = parsed.signing_input, parsed.signature or "AA"
    _refused_all(
        ctx,
        [
            ("two segments", head),
            ("a 'null' signature", f"{head}.null"),
            ("four segments", f"{head}.{sig}.garbage"),
            ("the signature twice", f"{head}.{sig}.{sig}"),
            ("an empty segment", f"{head}..x"),
        ],
        allowed=(400, 401),
    )
    return None


@check("JWT-SIG-005", level=Level.MUST, spec=["ASVS 9.1.1"])
def signature_with_nul_bytes_is_rejected(ctx: Context) -> str | None:
    """A signature with NUL plus junk appended, or replaced by a single NUL byte, is refused.

    Impact: A signature compared up to a NUL byte can be forged byte by byte.
    """
    parsed = ctx.parsed
    try:
        raw = b64url_decode(parsed.signature)
    except ValueError:
        raise Skip("the issued token's signature is not base64url (see JWT-FMT-001)") from None
    head = parsed.signing_input
    appended, nul = b64url_encode(raw + NUL + b"junk"), b64url_encode(NUL)
    _refused_all(
        ctx,
        [
            ("a signature with NUL and junk appended", f"{head}.{appended}"),
            ("a signature replaced by one NUL byte", f"{head}.{nul}"),
        ],
    )
    return None


@check("JWT-SIG-006", level=Level.MUST, spec=["RFC 7518 §3.2", "CVE-2019-20933"])
def empty_key_signature_is_rejected(ctx: Context) -> str | None:
    """A token re-signed with HS256 and the empty key is refused.

    Impact: A token MACed with the empty key is a token anyone can mint.
    """
    parsed = ctx.parsed
    header = {**(parsed.header or {}), "alg": "HS256"}
    signing_input = f"{encode_json(header)}.{parsed.segments[1]}"
    _refused_all(ctx, [("a token signed with the empty key", f"{signing_input}.{hmac_sign(signing_input, b'')}")])
    return None


@check("JWT-SIG-008", level=Level.MUST, spec=["RFC 7518 §3.4", "CVE-2022-21449"])
def zero_ecdsa_signatures_are_rejected(ctx: Context) -> str | None:
    """ES256/384/512 tokens with an all-zero signature (raw r||s or DER) are refused.

    Impact: All-zero ECDSA signatures accepted (CVE-2022-21449) let anyone mint tokens.
    """
    parsed = ctx.parsed
    variants = []
    for alg, size in EC_SIGNATURE_BYTES.items():
        signing_input = f"{encode_json({**(parsed.header or {}), 'alg': alg})}.{parsed.segments[1]}"
        variants.append((f"{alg} with an all-zero r||s signature", f"{signing_input}.{b64url_encode(bytes(size))}"))
        variants.append((f"{alg} with the DER signature r=0, s=0", f"{signing_input}.{DER_ZERO_SIGNATURE}"))
    _refused_all(ctx, variants)
    return None


@check("JWT-SIG-009", level=Level.MUST, spec=["RFC 7518 §3.4"])
def ecdsa_signatures_are_raw_r_s(ctx: Context) -> str | None:
    """(ES* tokens) the DER encoding of a valid signature is refused; a high-S twin is noted.

    Impact: A DER signature accepted where raw r||s is required shows a verifier that accepts malleable
    signatures.
    """
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    parsed = ctx.parsed
    alg = parsed.alg or ""
    if alg not in EC_SIGNATURE_BYTES:
        raise Skip(f"the target signs with {alg or 'no algorithm'}: this applies to ES256/384/512 tokens only")
    raw = b64url_decode(parsed.signature)
    half = len(raw) // 2
    r, s = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    # RFC 7518 §3.4: the signature is "the concatenation of the two octet sequences" R and S, not DER.
    der = b64url_encode(encode_dss_signature(r, s))
    expect_refused(ctx.accepted(f"{parsed.signing_input}.{der}"), what="a DER-encoded ECDSA signature", hint=HINT)
    order = {
        "ES256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        "ES384": int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16
        ),
        "ES512": int(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03"
            "BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    }[alg]
    high_s = (order - s).to_bytes(half, "big") if order > s else None
    if high_s is not None and is_success(ctx.accepted(f"{parsed.signing_input}.{b64url_encode(raw[:half] + high_s)}")):
        raise Info("the high-S twin of a valid ECDSA signature is accepted (signature malleability)")
    return None


ONLINE_GUESSES = 500


@check(
    "JWT-SIG-007", level=Level.MUST, spec=["RFC 8725 §3.5", "RFC 7518 §3.2"], needs=[Need.DESTRUCTIVE], cost="thorough"
)
def published_secrets_do_not_sign_accepted_tokens(ctx: Context) -> str | None:
    """HS256 tokens signed with published and default secrets (sent, one each) are all refused.

    Impact: A server that accepts tokens signed with a published secret is open to anyone who read the same
    tutorial.
    """
    from .token_format import weak_secrets

    parsed = ctx.parsed
    if parsed.alg in HMAC_DIGESTS:
        raise Skip("JWT-FMT-010 tested the issued token's key offline; the online guess is for non-HMAC servers")
    header = {**(parsed.header or {}), "alg": "HS256"}
    header.pop("kid", None)
    signing_input = f"{encode_json(header)}.{parsed.segments[1]}"
    candidates = weak_secrets()[:ONLINE_GUESSES]
    for index, secret in enumerate(candidates):
        response = ctx.accepted(f"{signing_input}.{hmac_sign(signing_input, secret)}")
        if is_success(response):
            raise Failure(
                f"an HS256 token signed with a published secret (list entry #{index + 1}) was ACCEPTED",
                expected="401 for every guess",
                actual=describe(response),
                hint="Pin the algorithm, and never accept HMAC tokens on a public-key server.",
                security=True,
            )
        ctx.exchanges[:] = ctx.exchanges[-2:]  # keep the evidence small
    return f"{len(candidates)} guesses refused"
