"""JWT-HDR-*: key-source header injection. RFC 8725 §3.10 <https://www.rfc-editor.org/rfc/rfc8725#section-3.10>,
RFC 7515 §4.1 and §10.3 <https://www.rfc-editor.org/rfc/rfc7515>.

A token's header can name the key that verifies it (``jwk``, ``jku``, ``x5u``, ``x5c``, ``kid``), but the
header is written by whoever made the token. Each check keeps the baseline token's claims, so that only
the key source is wrong, signs with a key the attacker holds (or the key an injected ``kid`` would
select), and expects a refusal: acceptance is a failure in every profile. ``jku`` and ``x5u`` point at a
listener on 127.0.0.1; when the target runs on this host, a request reaching it is server-side request
forgery, a failure even when the token is refused.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..client import Response, TransportError
from ..context import Context
from ..forge import b64url_encode, encode_json, make_hs
from ..issuer.mint import sign
from ..listener import Document, Hit, Listener
from ..model import Failure, Info, Level, Need
from ..registry import check
from ._expect import describe, expect_refused, is_success

KEY_MEMBERS = frozenset({"alg", "kid", "jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256"})
ATTACKER_KID = "conformance-attacker"
FETCH_GRACE_S = 0.5  # how long a fetch may lag behind the answer (an asynchronous key fetcher)
JWKS_PATH = "/jwks.json"
X5U_PATH = "/x5u.pem"
# RFC 6761 §6.4: names under .invalid never resolve, so a remote target cannot fetch anything from this.
UNREACHABLE_ORIGIN = "https://attacker.invalid"
LOOPBACK_NAMES = frozenset({"localhost"})

# JWT-HDR-006: the probe asks for a sleep; an answer slower than the baseline by more than the threshold
# means the kid reached a shell. The probe's timeout leaves a margin over the sleep.
SLEEP_PROBE_SECONDS = 10.0
SLOWDOWN_THRESHOLD_S = 8.0
PROBE_MARGIN_S = 1.0
BASELINE_TIMEOUT_S = 2.0

LONG_KID_CHARS = 8192
TOO_LARGE = (400, 401, 413, 431)  # refusals a server may give to an 8 KB header before reading the token


# -- attacker keys ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class AttackerKeys:
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate  # self-signed, for the RSA key

    @property
    def rsa_jwk(self) -> dict[str, str]:
        numbers = self.rsa.public_key().public_numbers()
        return {"kty": "RSA", "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)}

    @property
    def ec_jwk(self) -> dict[str, str]:
        numbers = self.ec.public_key().public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": _b64_int(numbers.x, 32), "y": _b64_int(numbers.y, 32)}

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def certificate_x5c(self) -> str:
        # RFC 7515 §4.1.6: x5c holds base64 (not base64url) DER certificates.
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def _b64_int(value: int, length: int | None = None) -> str:
    size = length if length is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(size, "big"))


_KEYS_LOCK = threading.Lock()


@cache
def _generate_keys() -> AttackerKeys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwt-conformance attacker")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(rsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(rsa_key, hashes.SHA256())
    )
    return AttackerKeys(rsa_key, ec.generate_private_key(ec.SECP256R1()), certificate)


def attacker_keys() -> AttackerKeys:
    """The attacker's RSA 2048 and P-256 keys, made once per process (concurrent checks share them)."""
    with _KEYS_LOCK:
        return _generate_keys()


def _sign(alg: str, keys: AttackerKeys, data: bytes) -> bytes:
    if alg == "RS256":
        return sign(keys.rsa, alg, data)
    if alg == "ES256":
        return sign(keys.ec, alg, data)  # RFC 7518 §3.4: R || S, each 32 bytes big-endian (not DER)
    raise ValueError(f"no attacker key for {alg}")


def make_signed(header: Mapping[str, Any], claims: Mapping[str, Any], keys: AttackerKeys) -> str:
    """A compact JWS signed with the attacker key that `header["alg"]` (RS256 or ES256) names."""
    signing_input = f"{encode_json(dict(header))}.{encode_json(dict(claims))}"
    signature = _sign(str(header["alg"]), keys, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"


# -- tokens that differ from the baseline only in their key source --------------------------------
def _claims(ctx: Context) -> dict[str, Any]:
    claims = ctx.parsed.claims
    if claims is not None:
        return dict(claims)
    now = int(time.time())  # an opaque baseline token: claims a JWT-accepting server would take
    return {"sub": ctx.login_name or "user", "iat": now, "exp": now + 300}


def _header(ctx: Context, alg: str, members: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline header (``typ`` and the like) without its key members, with ``alg`` and ``members``."""
    kept = {name: value for name, value in (ctx.parsed.header or {"typ": "JWT"}).items() if name not in KEY_MEMBERS}
    return {"alg": alg, **kept, **dict(members)}


def _hs_with_kid(ctx: Context, kid: Any, key: bytes, claims: Mapping[str, Any]) -> str:
    return make_hs(_header(ctx, "HS256", {"kid": kid}), dict(claims), key)


def _refused(
    response: Response,
    *,
    what: str,
    hint: str,
    server_error: str,
    allowed: Collection[int] = (401,),
) -> None:
    """``expect_refused``, with a 5xx reported as what it hints at (``server_error``)."""
    if response.status >= 500:
        raise Failure(
            f"{what} made the server fail with {response.status}: {server_error}",
            expected="a refusal: HTTP " + " or ".join(str(s) for s in sorted(allowed)),
            actual=describe(response),
            hint=hint,
            level=Level.MUST,
        )
    expect_refused(response, what=what, hint=hint, allowed=allowed)


# -- the callback listener (SSRF) ------------------------------------------------------------------
def target_is_local(base_url: str) -> bool:
    """True when the target runs on this host, so it can reach a listener on 127.0.0.1."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@contextmanager
def _callback(ctx: Context, documents: Mapping[str, Document]) -> Iterator[Listener | None]:
    """A listener serving ``documents`` when the target can reach it; ``None`` for a remote target."""
    if not target_is_local(ctx.config.base_url):
        yield None
        return
    with Listener(documents) as listener:
        yield listener


def _origin(listener: Listener | None) -> str:
    return listener.url("") if listener is not None else UNREACHABLE_ORIGIN


def _fetches(listener: Listener | None) -> tuple[tuple[Hit, ...], int]:
    """The requests recorded within the grace period, and how many arrived (some may not be recorded)."""
    if listener is None:
        return (), 0
    hits = listener.wait_for_hit(FETCH_GRACE_S)
    return hits, listener.seen


def _judge_url_probes(
    probes: list[tuple[str, Response, bool]],
    listener: Listener | None,
    fetches: tuple[tuple[Hit, ...], int],
    *,
    member: str,
    hint: str,
) -> str:
    """Acceptance first, then a fetch at the listener, then the refusal's status; a pass note otherwise."""
    hits, seen = fetches
    fetched = "; ".join(hit.describe() for hit in hits[:3]) or "connections dropped unanswered (too many at once)"
    for what, response, by_url in probes:
        if is_success(response) and by_url and seen:
            raise Failure(
                f"{what} was ACCEPTED ({response.status}) after the server fetched the attacker's key: {fetched}",
                expected="a refusal (HTTP 401), and no request to the URL in the token",
                actual=describe(response),
                hint=hint,
                level=Level.MUST,
            )
        _refused(response, what=what, hint=hint, server_error=f"the {member} header reaches code that fails on it")
    if seen:
        raise Failure(
            f"the server dereferenced the {member} URL taken from a token (server-side request forgery): "
            f"{seen} request(s) reached the listener: {fetched}",
            expected=f"no request to the {member} URL (the token itself was refused)",
            actual=fetched,
            hint=hint,
            level=Level.MUST,
        )
    if listener is None:
        return (
            f"refused; the fetch half was not observable: the target is not on this host, so a {member} fetch "
            "could not reach this suite's listener (run the suite on the target's host to observe it)"
        )
    return f"refused; no request reached the listener within {FETCH_GRACE_S:g} s of the answer"


# -- the checks ------------------------------------------------------------------------------------
EMBEDDED_KEY_HINT = (
    "Verify with keys configured on the server only; ignore the jwk header (or accept it only when it "
    "equals a key you already trust)."
)
KEY_URL_HINT = (
    "Never fetch keys from a URL taken from the token: configure the JWKS or certificate location on the "
    "server, or match jku/x5u against an allowlist of trusted URLs before any request (RFC 8725 §3.10)."
)
KID_LOOKUP_HINT = (
    "Use kid only to choose among keys the server already holds (a dictionary lookup); an unknown kid "
    "fails verification. Never use it as a file path, a query fragment or a command argument."
)


@check("JWT-HDR-001", level=Level.MUST, spec=["RFC 8725 §3.10", "RFC 7515 §10.3", "CVE-2018-0114", "ASVS 9.1.3"])
def embedded_jwk_is_not_trusted(ctx: Context) -> str | None:
    """A token signed with an attacker's key is refused even when that public key is embedded as `jwk`.

    Impact: Trusting a key the token carries lets anyone sign tokens with their own key.
    """
    keys = attacker_keys()
    claims = _claims(ctx)
    # RFC 7515 §10.3: the technique used to obtain public keys must authenticate the key's origin; a key
    # carried by the token itself authenticates nothing.
    for alg, jwk in (("RS256", keys.rsa_jwk), ("ES256", keys.ec_jwk)):
        token = make_signed(_header(ctx, alg, {"jwk": jwk}), claims, keys)
        _refused(
            ctx.accepted(token),
            what=f"a {alg} token signed with an attacker key embedded as jwk",
            hint=EMBEDDED_KEY_HINT,
            server_error="the jwk header reaches code that fails on it",
        )
    return None


@check(
    "JWT-HDR-002",
    level=Level.MUST,
    spec=["RFC 8725 §3.10", "RFC 7515 §4.1.2", "ASVS 9.1.3"],
    needs=[Need.CALLBACK],
)
def jku_is_not_followed(ctx: Context) -> str | None:
    """A token whose `jku` points at an attacker's JWK Set is refused, and the URL is never fetched.

    Impact: Fetching a key from a URL the token names lets anyone sign tokens, and makes the server fetch
    attacker URLs (SSRF).
    """
    keys = attacker_keys()
    claims = _claims(ctx)
    jwks = {"keys": [{**keys.rsa_jwk, "kid": ATTACKER_KID, "use": "sig", "alg": "RS256"}]}
    documents = {JWKS_PATH: Document("application/jwk-set+json", json.dumps(jwks).encode())}
    # RFC 8725 §3.10: "blindly following a "jku" (JWK set URL) or "x5u" (X.509 URL) header, which may
    # contain an arbitrary URL, could result in server-side request forgery (SSRF) attacks."
    # RFC 7515 §4.1.2: "an HTTP GET request to retrieve the JWK Set MUST use Transport Layer Security (TLS)"
    # (the URL sent here is plain http).
    with _callback(ctx, documents) as listener:
        url = _origin(listener) + JWKS_PATH
        token = make_signed(_header(ctx, "RS256", {"jku": url, "kid": ATTACKER_KID}), claims, keys)
        response = ctx.accepted(token)
        fetches = _fetches(listener)
    what = f"a token signed with an attacker key and jku {url}"
    return _judge_url_probes([(what, response, True)], listener, fetches, member="jku", hint=KEY_URL_HINT)


@check(
    "JWT-HDR-003",
    level=Level.MUST,
    spec=["RFC 8725 §3.10", "RFC 7515 §4.1.5", "RFC 7515 §4.1.6", "ASVS 9.1.3"],
    needs=[Need.CALLBACK],
)
def x5u_and_x5c_are_not_trusted(ctx: Context) -> str | None:
    """Tokens naming an attacker's certificate by `x5u` or embedding it as `x5c` are refused; x5u is not fetched.

    Impact: As JWT-HDR-002, through x5u or an embedded x5c certificate.
    """
    keys = attacker_keys()
    claims = _claims(ctx)
    documents = {X5U_PATH: Document("application/pem-certificate-chain", keys.certificate_pem)}
    # RFC 8725 §3.10: "blindly following a "jku" (JWK set URL) or "x5u" (X.509 URL) header, which may
    # contain an arbitrary URL, could result in server-side request forgery (SSRF) attacks."
    with _callback(ctx, documents) as listener:
        url = _origin(listener) + X5U_PATH
        by_url = make_signed(_header(ctx, "RS256", {"x5u": url}), claims, keys)
        embedded = make_signed(_header(ctx, "RS256", {"x5c": [keys.certificate_x5c]}), claims, keys)
        probes = [
            (f"a token signed with an attacker key and x5u {url}", ctx.accepted(by_url), True),
            ("a token signed with an attacker key, its self-signed certificate as x5c", ctx.accepted(embedded), False),
        ]
        fetches = _fetches(listener)
    return _judge_url_probes(probes, listener, fetches, member="x5u", hint=KEY_URL_HINT)


@check("JWT-HDR-004", level=Level.MUST, spec=["RFC 8725 §3.10"])
def kid_is_not_a_file_path(ctx: Context) -> str | None:
    """A token whose `kid` names `/dev/null` (directly or by traversal), signed with the empty key, is refused.

    Impact: A kid that reaches the file system can select an empty or known file as the key.
    """
    claims = _claims(ctx)
    # RFC 8725 §3.10: "The "kid" (key ID) header is used by the relying application to perform key lookup.
    # Applications should ensure that this does not create SQL or LDAP injection vulnerabilities by
    # validating and/or sanitizing the received value."
    for kid in ("../../../../../../dev/null", "/dev/null"):
        _refused(
            ctx.accepted(_hs_with_kid(ctx, kid, b"", claims)),
            what=f"an HS256 token with kid {json.dumps(kid)} signed with the empty key",
            hint=KID_LOOKUP_HINT,
            server_error="a hint that kid is used as a file path",
        )
    return None


@check("JWT-HDR-005", level=Level.MUST, spec=["RFC 8725 §3.10", "RFC 7515 §4.1.4"])
def kid_is_not_injected_into_a_query(ctx: Context) -> str | None:
    """Tokens whose `kid` carries SQL or NoSQL injection, signed with the key it would select, are refused.

    Impact: A kid that reaches a query can select a key of the attacker's choosing.
    """
    claims = _claims(ctx)
    # RFC 8725 §3.10: "Applications should ensure that this does not create SQL or LDAP injection
    # vulnerabilities by validating and/or sanitizing the received value."
    # RFC 7515 §4.1.4 (kid): "Its value MUST be a case-sensitive string." (the NoSQL variant is an object)
    variants: tuple[tuple[Any, str], ...] = (
        ("x' UNION SELECT '1';--", "SQL injection"),
        ({"$ne": None}, "NoSQL operator injection"),
    )
    for kid, attack in variants:
        _refused(
            ctx.accepted(_hs_with_kid(ctx, kid, b"1", claims)),
            what=f'an HS256 token with kid {json.dumps(kid)} ({attack}) signed with the key "1"',
            hint=KID_LOOKUP_HINT,
            server_error=f"a hint that kid reaches a database query unescaped ({attack})",
        )
    return None


def _timed(ctx: Context, token: str, timeout_s: float, *, tolerate_timeout: bool) -> tuple[float, Response | None]:
    """Seconds until the answer to ``token`` at the me path; ``None`` for no answer within ``timeout_s``."""
    started = time.perf_counter()
    try:
        response = ctx.request(
            "GET", ctx.me_path, headers=[("Authorization", f"Bearer {token}")], timeout_s=timeout_s, retry=False
        )
    except TransportError:
        elapsed = time.perf_counter() - started
        if not tolerate_timeout or elapsed < 0.9 * timeout_s:  # refused or reset: not a latency signal
            raise
        return elapsed, None
    return response.elapsed_s, response


@check("JWT-HDR-006", level=Level.MUST, spec=["RFC 8725 §3.10"])
def kid_is_not_run_as_a_command(ctx: Context) -> str | None:
    """A token whose `kid` is `|sleep 10` is refused without the answer being delayed by the sleep.

    Impact: A kid that reaches a shell runs attacker commands on the server.
    """
    claims = _claims(ctx)
    kid = f"|sleep {SLEEP_PROBE_SECONDS:g}"
    plain = _hs_with_kid(ctx, "conformance-latency-baseline", b"", claims)
    probe = _hs_with_kid(ctx, kid, b"", claims)
    baseline_s, _ = _timed(ctx, plain, BASELINE_TIMEOUT_S, tolerate_timeout=False)
    probe_s, response = _timed(ctx, probe, SLEEP_PROBE_SECONDS + PROBE_MARGIN_S, tolerate_timeout=True)
    if probe_s - baseline_s > SLOWDOWN_THRESHOLD_S:
        # Confirm that the server is not simply slow now: the same baseline request again.
        again_s, again = _timed(ctx, plain, BASELINE_TIMEOUT_S, tolerate_timeout=True)
        answered = "no answer" if response is None else f"HTTP {response.status}"
        if again is None or probe_s - again_s <= SLOWDOWN_THRESHOLD_S:
            raise Info(
                f"kid {json.dumps(kid)} took {probe_s:.1f} s ({answered}), but a plain kid was slow too "
                f"({again_s:.1f} s): the latency could not be attributed to the kid"
            )
        # A shell runs the sleep every time; a busy server is slow once. The probe again, before a verdict.
        repeat_s, _ = _timed(ctx, probe, SLEEP_PROBE_SECONDS + PROBE_MARGIN_S, tolerate_timeout=True)
        if repeat_s - again_s <= SLOWDOWN_THRESHOLD_S:
            raise Info(
                f"kid {json.dumps(kid)} took {probe_s:.1f} s once ({answered}) and {repeat_s:.2f} s when sent "
                "again: the latency did not repeat, so it is not attributed to the kid"
            )
        probe_s = min(probe_s, repeat_s)
        raise Failure(
            f"kid {json.dumps(kid)} delayed the answer by {probe_s - max(baseline_s, again_s):.1f} s "
            f"({answered} after {probe_s:.1f} s; a plain kid: {baseline_s:.2f} s and {again_s:.2f} s): "
            "the kid appears to reach a shell (command injection)",
            expected=f"an answer about as fast as for a plain kid (within {SLOWDOWN_THRESHOLD_S:g} s)",
            actual=f"{probe_s:.1f} s vs {max(baseline_s, again_s):.2f} s",
            hint="Never pass header values to a shell or a subprocess. " + KID_LOOKUP_HINT,
            level=Level.MUST,
        )
    if response is None:  # practically unreachable: a timeout is far slower than the threshold
        raise Info(f"kid {json.dumps(kid)} got no answer within {probe_s:.1f} s")
    _refused(
        response,
        what=f"an HS256 token with kid {json.dumps(kid)}",
        hint=KID_LOOKUP_HINT,
        server_error="a hint that kid reaches a command or a lookup that fails on it",
    )
    return f"refused in {probe_s:.2f} s (a plain kid: {baseline_s:.2f} s)"


@check("JWT-HDR-007", level=Level.MUST, spec=["RFC 8725 §3.10"])
def odd_kid_does_not_select_a_fallback_key(ctx: Context) -> str | None:
    """Tokens with a blank, unknown, wildcard or 8 KB `kid` are refused: no fallback to "any key" or to no check.

    Impact: A verifier that falls back to any key or no key on an odd kid accepts forged tokens.
    """
    claims = _claims(ctx)
    variants: tuple[tuple[str, str, Collection[int]], ...] = (
        ("", "a blank kid", (401,)),
        ("conformance-unknown-kid", "an unknown kid", (401,)),
        ("*", 'the wildcard kid "*"', (401,)),
        ("k" * LONG_KID_CHARS, f"a {LONG_KID_CHARS // 1024} KB kid", TOO_LARGE),
    )
    for kid, label, allowed in variants:
        _refused(
            ctx.accepted(_hs_with_kid(ctx, kid, b"", claims)),
            what=f"an HS256 token with {label} signed with the empty key",
            hint=KID_LOOKUP_HINT,
            server_error="the kid reaches a lookup that fails on it",
            allowed=allowed,
        )
    return None
