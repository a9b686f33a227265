"""Issuer mode at run time: the run mints its tokens with the keys of the test issuer the API trusts.

The issuer (``jwt-conformance issuer --keys-dir DIR``) runs beside the API; the run shares its keys
directory. Every token is an RFC 9068 access token (``typ: at+jwt``) with ``iss``, ``sub``, ``aud``,
``exp``, ``iat``, ``jti`` and ``client_id``, the configured scope and claims, signed by the issuer's
signing key. Checks that need other tokens mint them here; the ISS-* checks also read how often the
API fetched the issuer's key set, and publish and remove a probe key.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx2 as httpx

from .config import IssuerMode
from .errors import ConformanceError
from .issuer import mint
from .issuer.app import DISCOVERY_PATH, FETCHES_PATH, JWKS_PATH
from .issuer.keys import IssuerError, KeyEntry, PrivateKey, load_private_key, public_jwks, read_state, state_lock

ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 §2.1
CLIENT_ID = "jwt-conformance"
ISSUER_TIMEOUT_S = 5.0


class IssuerUnavailableError(ConformanceError):
    """The test issuer does not answer, or publishes other keys than the keys directory holds."""


class IssuerSession:
    """The run's side of the test issuer: claims, minting, the keys, and the issuer's fetch counter."""

    def __init__(self, mode: IssuerMode, clock: Callable[[], float] = time.time) -> None:
        self.mode = mode
        self._clock = clock

    @property
    def keys_dir(self) -> Path:
        return self.mode.keys_dir

    def subject(self, role: str) -> str | None:
        return {"primary": self.mode.subject, "second": self.mode.second_subject}.get(role)

    def claims(self, role: str = "primary") -> dict[str, Any]:
        """The claims of a valid access token for ``role``'s subject."""
        subject = self.subject(role)
        if subject is None:
            raise ValueError(f"no subject for {role}")
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.mode.url,
            "sub": subject,
            "aud": self.mode.audience,
            "iat": now,
            "exp": now + self.mode.lifetime_s,
            "jti": secrets.token_hex(16),
            "client_id": CLIENT_ID,
        }
        if self.mode.scope:
            claims["scope"] = self.mode.scope
        if self.mode.user_claim not in claims:
            claims[self.mode.user_claim] = subject
        claims.update(self.mode.claims)
        return claims

    def mint(
        self,
        claims: Mapping[str, Any],
        *,
        kid: str | None = None,
        alg: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """``claims`` signed by the issuer (its signer, or the key ``kid``), typed ``at+jwt`` unless ``headers`` say."""
        return mint(self.keys_dir, claims, kid=kid, alg=alg, headers={"typ": ACCESS_TOKEN_TYPE, **(headers or {})})

    def token(self, role: str = "primary") -> str:
        return self.mint(self.claims(role))

    def key(self, kid: str) -> tuple[KeyEntry, PrivateKey] | None:
        """The entry and private key of ``kid``, or ``None`` when the directory does not hold it."""
        entry = read_state(self.keys_dir).entry(kid)
        if entry is None:
            return None
        return entry, load_private_key(self.keys_dir, kid)

    def public_jwks(self) -> dict[str, Any]:
        with state_lock(self.keys_dir, shared=True):
            return public_jwks(self.keys_dir, read_state(self.keys_dir))

    # -- the running issuer ------------------------------------------------------------------------
    def _get(self, path: str) -> Any:
        url = self.mode.endpoint + path
        try:
            response = httpx.get(url, timeout=ISSUER_TIMEOUT_S, follow_redirects=False, trust_env=False)
        except httpx.HTTPError as exc:
            raise IssuerUnavailableError(
                f"the test issuer does not answer at {self.mode.endpoint} ({type(exc).__name__}): start "
                f"`jwt-conformance issuer --keys-dir {self.keys_dir}` and keep it running during the run"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            raise IssuerUnavailableError(
                f"{url} answered {response.status_code} without a JSON object: is it this suite's test issuer "
                "(`jwt-conformance issuer`)?"
            )
        return body

    def check_running(self) -> None:
        """The issuer answers, publishes this run's issuer URL, and its signing key."""
        discovery = self._get(DISCOVERY_PATH)
        if discovery.get("issuer") != self.mode.url:
            raise IssuerUnavailableError(
                f"the issuer at {self.mode.endpoint} publishes issuer {discovery.get('issuer')!r}, not "
                f"{self.mode.url!r}: restart it with --issuer {self.mode.url}, or drop --issuer from the run"
            )
        try:
            signer = read_state(self.keys_dir).signer
        except IssuerError as exc:
            raise IssuerUnavailableError(str(exc)) from None
        jwks = self._get(JWKS_PATH)
        kids = {key.get("kid") for key in jwks.get("keys", []) if isinstance(key, dict)}
        if signer not in kids:
            raise IssuerUnavailableError(
                f"the issuer at {self.mode.endpoint} does not publish the signing key {signer} of "
                f"{self.keys_dir}: it serves another keys directory"
            )

    def fetches(self) -> dict[str, int] | None:
        """How often the issuer's key set and discovery were fetched; ``None`` when the issuer cannot say."""
        try:
            body = self._get(FETCHES_PATH)
        except IssuerUnavailableError:
            return None
        counts = {name: body.get(name) for name in ("jwks", "discovery")}
        if not all(isinstance(value, int) for value in counts.values()):
            return None
        return {name: int(value) for name, value in counts.items() if value is not None}
