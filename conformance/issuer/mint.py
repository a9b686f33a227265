"""Tokens signed by the issuer's keys, byte by byte with ``cryptography`` (no JWT library)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..forge import b64url_encode, encode_json
from .keys import ALGORITHMS, IssuerError, KeyEntry, PrivateKey, load_private_key, read_state

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


def signer(key: PrivateKey, alg: str) -> Callable[[bytes], bytes] | None:
    """The JWS signing function of ``alg`` with ``key`` (RFC 7518 §3.3-3.5, RFC 8037), or ``None`` when that key
    cannot make that algorithm's signatures. RS*, PS*, ES* (raw ``r || s``), EdDSA.

    An ES* algorithm signs with the key's own curve, so ES384 with a P-256 key gives what a verifier that
    trusts the header's ``alg`` over the key would accept.
    """
    digest = _HASHES.get(alg[2:])
    if alg[:2] == "RS" and digest is not None and isinstance(key, rsa.RSAPrivateKey):
        return lambda data: key.sign(data, padding.PKCS1v15(), digest())
    if alg[:2] == "PS" and digest is not None and isinstance(key, rsa.RSAPrivateKey):
        return lambda data: key.sign(data, padding.PSS(padding.MGF1(digest()), padding.PSS.DIGEST_LENGTH), digest())
    if alg[:2] == "ES" and digest is not None and isinstance(key, ec.EllipticCurvePrivateKey):
        size = (key.curve.key_size + 7) // 8

        def ecdsa(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest())))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")

        return ecdsa
    if alg == "EdDSA" and isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign
    return None


def sign(key: PrivateKey, alg: str, signing_input: bytes) -> bytes:
    """The JWS signature of ``signing_input`` (see :func:`signer`); :class:`IssuerError` if the key cannot make it."""
    make = signer(key, alg)
    if make is None:
        raise IssuerError(f"a {type(key).__name__} cannot sign {alg}")
    return make(signing_input)


def _pick(keys_dir: Path, alg: str | None, kid: str | None) -> KeyEntry:
    state = read_state(keys_dir)
    if kid is not None:
        entry = state.entry(kid)
        if entry is None:
            raise IssuerError(f"no key with kid {kid} in {keys_dir}: use a kid from its issuer-state.json")
        if alg is not None and alg != entry.alg:
            raise IssuerError(f"key {kid} is an {entry.alg} key, not {alg}: drop alg or pick another kid")
        return entry
    if alg is None:
        signer = state.entry(state.signer)
        assert signer is not None  # read_state guarantees it
        return signer
    if alg not in ALGORITHMS:
        raise IssuerError(f"unknown algorithm {alg}: use one of {', '.join(ALGORITHMS)}")
    active = state.active(alg)
    if active is None:
        raise IssuerError(f"no published {alg} key in {keys_dir}: `jwt-conformance issuer rotate --alg {alg}` adds one")
    return active


def mint(
    keys_dir: Path | str,
    claims: Mapping[str, Any],
    *,
    alg: str | None = None,
    kid: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS of ``claims`` signed by a key of the issuer in ``keys_dir``.

    The key: the one named by ``kid`` (any key the directory holds, rotated-out and retired ones
    included), else the active key of ``alg``, else the signer. The header is
    ``{"alg", "typ": "JWT", "kid"}`` updated with ``headers``; a ``None`` value there removes the
    member, so ``headers={"kid": None}`` mints a token without ``kid`` and ``headers={"kid": "x"}``
    a validly signed token naming another kid. ``alg`` in ``headers`` changes the header only, never
    how the token is signed. The claims are taken as given: nothing is added.
    """
    directory = Path(keys_dir)
    entry = _pick(directory, alg, kid)
    header: dict[str, Any] = {"alg": entry.alg, "typ": "JWT", "kid": entry.kid}
    for name, value in (headers or {}).items():
        if value is None:
            header.pop(name, None)
        else:
            header[name] = value
    signing_input = f"{encode_json(header)}.{encode_json(dict(claims))}"
    signature = sign(load_private_key(directory, entry.kid), entry.alg, signing_input.encode("ascii"))
    return f"{signing_input}.{b64url_encode(signature)}"
