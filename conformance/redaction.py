"""Placeholders for every credential the run knows, in every output.

A secret (password, token, key) is replaced whole, in its encodings (form, percent, JSON, standard
base64), by its placeholder (``${PASSWORD}``, ``${ACCESS_TOKEN}``...). Any run of text covered by
16-character pieces of a secret is replaced too, so that a copy with one bit flipped, cut short or
re-encoded cannot be turned back into the secret. A JWT-shaped string derived from a known token, or
signed with a key the run holds (the controls the suite mints), becomes ``${FORGED_TOKEN_n}`` with a
recipe that says how it was built (``recipe``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

from .forge import HMAC_DIGESTS
from .model import Exchange, Result

WINDOW = 16  # the shortest piece of a secret that is never shown
_GRAM = WINDOW // 2
MIN_SECRET = 3  # shorter secrets would blank out ordinary words
# A compact JWS or JWE (base64url, or standard base64 after re-encoding): two to five parts joined by dots
# (an empty part ends the match: "header.claims." is "header.claims" and its dot).
JWT_SHAPED = re.compile(r"(?<![A-Za-z0-9_\-+])[A-Za-z0-9_\-+]+={0,2}(?:\.[A-Za-z0-9_\-+]+={0,2}){1,4}")
FORGED = re.compile(r"\$\{[A-Z_]*TOKEN_\d+\}")
NOTE = "  # "  # starts the comment of a curl line that says how its forged tokens were built
_PREFIXED = re.compile(r"^\$\{([A-Z]+_)?(PASSWORD|ACCESS_TOKEN|REFRESH_TOKEN)\}$")
TOKEN_MEMBERS = {"access_token": "ACCESS_TOKEN", "refresh_token": "REFRESH_TOKEN", "id_token": "ID_TOKEN"}
# HS256/384/512 told apart by signature length: a forged header may name another alg than was used.
_DIGESTS = {digest().digest_size: digest for digest in HMAC_DIGESTS.values()}

Verifier = Callable[[bytes, bytes], bool]  # (signing input, signature) -> signed with the key?


def _b64url_decode(segment: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        return None


def variants(secret: str) -> set[str]:
    """``secret`` as it may appear in output: raw, form- and percent-encoded, JSON-escaped, standard base64."""
    found = {secret, quote_plus(secret), quote(secret, safe=""), json.dumps(secret)[1:-1]}
    standard = secret.replace("-", "+").replace("_", "/")
    if standard != secret:
        found |= {standard, quote(standard, safe=""), quote_plus(standard)}
    return {variant for variant in found if len(variant) >= MIN_SECRET}


class Redactor:
    """Replaces known secrets, their encodings and their 16-character pieces with placeholders (thread-safe)."""

    def __init__(self, secrets: Mapping[str, str] | None = None, *, forged_name: str = "FORGED_TOKEN") -> None:
        self._forged_name = forged_name  # ${FORGED_TOKEN_n}; another name keeps the numbering of two redactors apart
        self._lock = threading.RLock()
        self._exact: dict[str, str] = {}  # a secret or one of its encodings -> its placeholder
        self._longest_first: list[str] = []
        self._windows: dict[str, tuple[str, str]] = {}  # 16-char piece -> (placeholder, the secret it is from)
        self._grams: set[str] = set()  # the 8-char pieces of the secrets: a cheap first filter
        self._tokens: dict[str, str] = {}  # known tokens (JWT-shaped) -> placeholder
        self._keys: list[tuple[Verifier, str]] = []
        self._decided: dict[str, str | None] = {}  # JWT-shaped string -> its placeholder, or None (kept)
        self._forged: dict[str, str] = {}  # JWT-shaped string -> its ${FORGED_TOKEN_n}, for good
        self._recipes: dict[str, str] = {}  # ${FORGED_TOKEN_n} -> how it was built
        for secret, placeholder in (secrets or {}).items():
            self.add(secret, placeholder)

    # -- what is secret -----------------------------------------------------------------------
    def add(self, secret: str, placeholder: str) -> None:
        """Redact ``secret``, its encodings and (from 16 characters) every 16-character piece of it."""
        if not secret or len(secret) < MIN_SECRET:
            return
        with self._lock:
            for variant in variants(secret):
                self._exact[variant] = placeholder
                for start in range(len(variant) - WINDOW + 1):
                    piece = variant[start : start + WINDOW]
                    self._windows.setdefault(piece, (placeholder, secret))
                    self._grams.update(piece[i : i + _GRAM] for i in range(WINDOW - _GRAM + 1))
            if secret.count(".") >= 2:
                self._tokens.setdefault(secret, placeholder)
            self._longest_first = sorted(self._exact, key=len, reverse=True)
            self._decided.clear()

    def add_token(self, token: str, placeholder: str) -> None:
        """Like ``add``, except that a token known already keeps its first placeholder."""
        with self._lock:
            if token in self._tokens or token in self._exact:
                return
            self.add(token, placeholder)

    def add_key(self, verifier: Verifier, placeholder: str) -> None:
        """A key the run holds: a JWT-shaped string it verifies is a usable token (a control)."""
        with self._lock:
            self._keys.append((verifier, placeholder))
            self._decided.clear()

    def add_hmac_key(self, key: bytes, placeholder: str) -> None:
        """An HMAC key (given, or cracked): its text is a secret, and tokens it signs are controls."""
        self.add_key(hmac_verifier(key), placeholder)
        text = key.decode("utf-8", errors="replace")
        self.add(text, placeholder)

    def placeholder_for(self, text: str) -> str | None:
        """The placeholder of the first known secret ``text`` contains (longest first)."""
        with self._lock:
            return next((self._exact[v] for v in self._longest_first if v in text), None)

    # -- learning from answers ----------------------------------------------------------------
    def learn_answer(self, request_text: str, body: bytes, header_values: Iterable[str]) -> None:
        """Register every credential in an answer: token members of a JSON body, and JWT-shaped strings.

        Strings the request itself sent (a token echoed back) are left to what the request's redaction
        makes of them. Names follow the request: an answer to ``${SECOND_PASSWORD}`` holds
        ``${SECOND_ACCESS_TOKEN}``.
        """
        text = body.decode("utf-8", errors="replace")
        found: list[tuple[str, str]] = []
        try:
            document = json.loads(text) if text.lstrip()[:1] in ("{", "[") else None
        except ValueError:
            document = None
        found += _token_members(document)
        for source in (text, *header_values):
            found += [("ISSUED_TOKEN", m.group()) for m in JWT_SHAPED.finditer(source) if _looks_issued(m.group())]
        if not found:
            return
        prefix = self._prefix(request_text)
        for kind, value in found:
            if value not in request_text and len(value) >= MIN_SECRET:
                self.add_token(value, f"${{{prefix}{kind}}}")

    def _prefix(self, request_text: str) -> str:
        placeholder = self.placeholder_for(request_text)
        match = _PREFIXED.match(placeholder or "")
        return (match.group(1) or "") if match else ""

    # -- redaction ----------------------------------------------------------------------------
    def __call__(self, text: str) -> str:
        if not text or len(text) < MIN_SECRET:
            return text
        with self._lock:
            for variant in self._longest_first:
                if variant in text:
                    text = text.replace(variant, self._exact[variant])
            text = JWT_SHAPED.sub(self._jwt, text)
            return self._pieces(text)

    def learn(self, text: str) -> None:
        """Decide every JWT-shaped string of ``text`` (a control found is known from then on)."""
        with self._lock:
            for match in JWT_SHAPED.finditer(text):
                self._jwt(match)

    def recipe(self, placeholder: str) -> str | None:
        """How ``${FORGED_TOKEN_n}`` was built (from which known token, with what changed)."""
        with self._lock:
            return self._recipes.get(placeholder)

    def annotate(self, curl: str) -> str:
        """``curl`` with a trailing comment that says how to build each forged token it sends."""
        command, _, comment = curl.partition(NOTE)
        known = dict(note.split(" = ", 1) for note in comment.split("; ") if " = " in note)
        notes = []
        for name in dict.fromkeys(FORGED.findall(command)):
            recipe = self.recipe(name) or known.get(name)
            if recipe:
                notes.append(f"{name} = {self(recipe)}")
        return command + (NOTE + "; ".join(notes) if notes else "")

    def exchange(self, exchange: Exchange) -> Exchange:
        """The exchange with every field redacted again (with what the run has learnt since)."""
        return replace(
            exchange,
            url=self(exchange.url),
            request_headers=tuple((name, self(value)) for name, value in exchange.request_headers),
            request_body=None if exchange.request_body is None else self(exchange.request_body),
            response_headers={name: self(value) for name, value in exchange.response_headers.items()},
            response_body=None if exchange.response_body is None else self(exchange.response_body),
            curl=self.annotate(self(exchange.curl)),
            error=None if exchange.error is None else self(exchange.error),
        )

    def result(self, result: Result) -> Result:
        """The result with its message, evidence and exchanges redacted."""

        def optional(value: str | None) -> str | None:
            return None if value is None else self(value)

        texts = [result.message, result.expected, result.actual, result.hint]
        for exchange in result.exchanges:
            texts += [exchange.url, exchange.request_body, exchange.response_body, exchange.curl]
            texts += [value for _, value in exchange.request_headers]
        for text in texts:  # first learn every control in the result, wherever it comes first
            self.learn(text or "")
        return replace(
            result,
            message=self(result.message),
            expected=optional(result.expected),
            actual=optional(result.actual),
            hint=optional(result.hint),
            exchanges=tuple(self.exchange(e) for e in result.exchanges),
        )

    def _jwt(self, match: re.Match[str]) -> str:
        candidate = match.group()
        if len(candidate) < WINDOW:
            return candidate
        if candidate in self._forged:
            return self._forged[candidate]
        if candidate not in self._decided:
            self._decided[candidate] = self._decide(candidate)
        return self._decided[candidate] or candidate

    def _decide(self, candidate: str) -> str | None:
        """``${FORGED_TOKEN_n}`` when ``candidate`` shares a piece with a known token or a run's key signs it."""
        owners = Counter(
            self._windows[piece][1]
            for piece in (candidate[i : i + WINDOW] for i in range(len(candidate) - WINDOW + 1))
            if piece in self._windows
        )
        tokens = [(count, owner) for owner, count in owners.items() if owner in self._tokens]
        base = max(tokens)[1] if tokens else None
        key = self._signer(candidate)
        if base is None and key is None:
            return None
        name = f"${{{self._forged_name}_{len(self._recipes) + 1}}}"
        self._recipes[name] = _recipe(candidate, base, self._tokens.get(base or ""), key)
        self._forged[candidate] = name
        if key is not None:  # a usable token: a copy cut short or altered later must not show pieces of it
            self.add(candidate, name)
        return name

    def _signer(self, candidate: str) -> str | None:
        head, _, signature = candidate.rpartition(".")
        raw = _b64url_decode(signature.replace("+", "-").replace("/", "_"))
        if not raw or head.count(".") != 1:
            return None
        return next((name for verify, name in self._keys if _safely(verify, head.encode(), raw)), None)

    def _pieces(self, text: str) -> str:
        """Replace every run of ``text`` covered by 16-character pieces of a secret."""
        if len(text) < WINDOW or not self._windows:
            return text
        starts: set[int] = set()
        last = len(text) - WINDOW
        for block in range(0, len(text) - _GRAM + 1, _GRAM):
            if text[block : block + _GRAM] in self._grams:
                for start in range(max(0, block - _GRAM), min(block, last) + 1):
                    if text[start : start + WINDOW] in self._windows:
                        starts.add(start)
        if not starts:
            return text
        runs: list[list[int]] = []
        for start in sorted(starts):
            if runs and start <= runs[-1][1]:
                runs[-1][1] = start + WINDOW
            else:
                runs.append([start, start + WINDOW])
        out: list[str] = []
        position = 0
        for start, end in runs:
            placeholder = self._windows[text[start : start + WINDOW]][0]
            out += [text[position:start], f"[piece of {placeholder}]"]
            position = end
        out.append(text[position:])
        return "".join(out)


def _safely(verify: Verifier, signing_input: bytes, signature: bytes) -> bool:
    try:
        return verify(signing_input, signature)
    except Exception:  # a key that cannot judge this signature did not make it
        return False


def _token_members(document: Any) -> list[tuple[str, str]]:
    """(kind, value) of every ``access_token``/``refresh_token``/``id_token`` string member, at any depth."""
    found: list[tuple[str, str]] = []
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for name, value in node.items():
                kind = TOKEN_MEMBERS.get(str(name).lower())
                if kind and isinstance(value, str) and value:
                    found.append((kind, value))
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _looks_issued(candidate: str) -> bool:
    """A JWT-shaped string in an answer whose first part decodes to a JSON object (not a dotted name)."""
    head = candidate.split(".", 1)[0]
    decoded = _b64url_decode(head) if len(candidate) >= WINDOW else None
    return bool(decoded) and decoded.lstrip()[:1] == b"{"  # type: ignore[union-attr]


def _recipe(candidate: str, base: str | None, base_name: str | None, key: str | None) -> str:
    """How ``candidate`` was built from the known token ``base`` (named ``base_name``), or with ``key``."""
    if base is None or base_name is None:
        return f"a token signed with {key}"
    mine, theirs = candidate.split("."), base.split(".")
    said: list[str] = []
    for index, part in enumerate(("header", "claims", "signature")):
        new = mine[index] if index < len(mine) else ""
        old = theirs[index] if index < len(theirs) else ""
        if index == 2 and key is not None and new != old:
            said.append(f"signed with {key}")
        else:
            said.append(_change(part, new, old))
    if len(mine) > 3:
        said.append(f"{len(mine) - 3} more part(s) appended")
    return f"built from {base_name}: " + ", ".join(said)


def _change(part: str, new: str, old: str) -> str:
    """What became of one part of a token (never a piece of it long enough to be a secret's)."""
    if new == old:
        return f"{part} kept"
    if not new:
        return f"{part} removed"
    if old.startswith(new):
        return f"{part} cut to {len(new)} of {len(old)} characters"
    if new.startswith(old):
        return f"{part} with {len(new) - len(old)} characters appended"
    if new.replace("+", "-").replace("/", "_").rstrip("=") == old:
        return f"{part} re-encoded in standard base64"
    if part == "header":
        header = _json_text(new)
        if header is not None and len(header) <= 120:
            return f"header {header}"
    if part == "claims":
        changed = _claims_change(new, old)
        if changed:
            return f"claims with {changed}"
    if len(new) == len(old):
        differ = sum(a != b for a, b in zip(new, old, strict=True))
        return f"{part} with {differ} character(s) changed"
    if len(new) < WINDOW and new.isascii() and new.isprintable():
        return f"{part} replaced by {new!r}"
    return f"{part} replaced"


def _json_text(segment: str) -> str | None:
    raw = _b64url_decode(segment)
    try:
        value = json.loads(raw or b"")
    except ValueError:
        return None
    return json.dumps(value, separators=(",", ":")) if isinstance(value, dict) else None


def _claims_change(new: str, old: str) -> str:
    """Which claims were added, removed or changed (names only): ``exp, iat changed; nbf added``."""
    try:
        mine, theirs = json.loads(_b64url_decode(new) or b""), json.loads(_b64url_decode(old) or b"")
    except ValueError:
        return ""
    if not isinstance(mine, dict) or not isinstance(theirs, dict):
        return ""
    groups = (
        ("changed", [n for n in mine if n in theirs and mine[n] != theirs[n]]),
        ("added", [n for n in mine if n not in theirs]),
        ("removed", [n for n in theirs if n not in mine]),
    )
    return "; ".join(f"{', '.join(names)} {verb}" for verb, names in groups if names)


# -- keys -----------------------------------------------------------------------------------------


def hmac_verifier(key: bytes) -> Verifier:
    def verify(signing_input: bytes, signature: bytes) -> bool:
        digest = _DIGESTS.get(len(signature))
        return digest is not None and hmac.compare_digest(hmac.new(key, signing_input, digest).digest(), signature)

    return verify


def private_key_verifier(pem: bytes) -> Verifier | None:
    """A verifier for RS*/PS*/ES*/EdDSA signatures made with the PEM private key ``pem`` (None if unreadable)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    try:
        public = serialization.load_pem_private_key(pem, password=None).public_key()
    except (ValueError, TypeError):
        return None
    hash_types = (hashes.SHA256, hashes.SHA384, hashes.SHA512)

    def verify(signing_input: bytes, signature: bytes) -> bool:
        for hash_type in hash_types:
            try:
                if isinstance(public, rsa.RSAPublicKey):
                    for pad in (padding.PKCS1v15(), padding.PSS(padding.MGF1(hash_type()), hash_type().digest_size)):
                        try:
                            public.verify(signature, signing_input, pad, hash_type())
                            return True
                        except InvalidSignature:
                            continue
                    continue
                if isinstance(public, ec.EllipticCurvePublicKey):
                    half = len(signature) // 2
                    der = encode_dss_signature(
                        int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
                    )
                    public.verify(der, signing_input, ec.ECDSA(hash_type()))
                    return True
                if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
                    public.verify(signature, signing_input)
                    return True
            except InvalidSignature:
                continue
        return False

    return verify


def register_private_key(redactor: Redactor, path: Path, placeholder: str = "${PRIVATE_KEY}") -> None:
    """The PEM file's text is a secret, and tokens its key signs are controls."""
    try:
        pem = path.read_bytes()
    except OSError:
        return
    redactor.add(pem.decode("utf-8", errors="replace").strip(), placeholder)
    verifier = private_key_verifier(pem)
    if verifier is not None:
        redactor.add_key(verifier, placeholder)


def register_issuer_keys(redactor: Redactor, keys_dir: Path) -> None:
    """Issuer mode: tokens any key of the test issuer signs are usable credentials (controls)."""
    for path in sorted(keys_dir.glob("*.pem")):
        register_private_key(redactor, path, "${ISSUER_KEY}")


def register_keys(redactor: Redactor, config: Any) -> None:
    """The keys a run was given: their text is secret, and tokens they sign are usable (controls)."""
    if config.keys.hs_secret:
        redactor.add_hmac_key(config.keys.hs_secret.encode(), "${HS_SECRET}")
    if config.keys.private_key_file is not None:
        register_private_key(redactor, config.keys.private_key_file)
    if getattr(config, "issuer_mode", None) is not None:
        register_issuer_keys(redactor, config.issuer_mode.keys_dir)


def for_config(config: Any) -> Redactor:
    """A redactor from what a run's config knows: passwords and keys (the reporters' last line of defence)."""
    redactor = Redactor(config.secrets, forged_name="KEY_SIGNED_TOKEN")
    register_keys(redactor, config)
    return redactor
