"""JWT-JWKS-*: the published key set. RFC 7517 §4-5 <https://www.rfc-editor.org/rfc/rfc7517>, RFC 7518 §6.

These run when the target publishes a JWK Set (found on common paths, or given with --jwks-url);
otherwise they SKIP. A public-key server that leaks a private member has given its key away.
"""

from __future__ import annotations

import jwt

from ..context import Context
from ..model import Failure, Level, Need
from ..registry import check
from ._jwks import published_keys

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


def _name(key: dict[str, object], index: int) -> str:
    return f"key #{index + 1}" + (f" (kid {key['kid']!r})" if "kid" in key else "")


@check(
    "JWT-JWKS-001",
    level=Level.MUST,
    spec=["RFC 7517 §5", "RFC 7518 §6.2.2", "RFC 7518 §6.3.2"],
    needs=[Need.PUBLIC_KEY],
)
def published_keys_have_no_private_members(ctx: Context) -> str | None:
    """The JWK Set publishes public members only: no d, p, q, dp, dq, qi, oth or k.

    Impact: A private member published in the JWK Set hands out the signing key.
    """
    url, keys = published_keys(ctx)
    leaks = [f"{_name(k, i)}: {', '.join(m for m in PRIVATE_MEMBERS if m in k)}" for i, k in enumerate(keys)]
    leaks = [leak for leak in leaks if not leak.endswith(": ")]
    if leaks:
        raise Failure(
            f"the JWK Set at {url} publishes private key material",
            expected="public members only (kty, kid, use, alg, n, e, crv, x, y)",
            actual="; ".join(leaks),
            hint="Serialize public keys only; rotate every key that was published with private members.",
        )
    return f"{len(keys)} public key(s) at {url}"


@check("JWT-JWKS-002", level=Level.SHOULD, spec=["RFC 7517 §4.5"], needs=[Need.PUBLIC_KEY])
def published_key_ids_are_unique(ctx: Context) -> str | None:
    """Every key in the JWK Set has its own kid."""
    url, keys = published_keys(ctx)
    kids = [k.get("kid") for k in keys]
    repeated = sorted({str(kid) for kid in kids if kids.count(kid) > 1})
    missing = sum(1 for kid in kids if kid is None)
    if repeated or (missing and len(keys) > 1):
        raise Failure(
            "keys in the JWK Set cannot be told apart by kid",
            expected="a distinct kid on every key",
            actual=f"repeated: {', '.join(repeated) or '-'}; without kid: {missing}",
            hint="Name each key (e.g. its RFC 7638 thumbprint) and put that kid in the tokens it signs.",
        )
    return None


@check("JWT-JWKS-003", level=Level.MUST, spec=["RFC 7517 §4", "RFC 7518 §6"], needs=[Need.PUBLIC_KEY])
def published_keys_fit_their_algorithm(ctx: Context) -> str | None:
    """Each published key loads, and its key type fits the algorithm it declares.

    Impact: A key whose type does not fit its algorithm breaks verifiers or invites algorithm confusion.
    """
    url, keys = published_keys(ctx)
    problems = []
    for index, key in enumerate(keys):
        alg = key.get("alg")
        expected_kty = KEY_TYPES.get(str(alg)[:2]) if isinstance(alg, str) else None
        if expected_kty is not None and key.get("kty") != expected_kty:
            problems.append(f"{_name(key, index)}: kty {key.get('kty')!r} cannot sign {alg}")
            continue
        try:
            jwt.PyJWK(key)
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
            problems.append(f"{_name(key, index)}: does not load ({type(exc).__name__})")
    if problems:
        raise Failure(
            f"the JWK Set at {url} holds keys that cannot verify what they claim",
            expected="well-formed keys whose kty fits their alg",
            actual="; ".join(problems),
            hint="Publish each key with the alg it signs with and the members its kty requires.",
        )
    return None
