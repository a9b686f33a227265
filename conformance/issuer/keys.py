"""The issuer's signing keys in a directory: generation, the state file, rotation, the public JWK Set.

The directory holds one PKCS#8 PEM file per key (``<kid>.pem``, mode 0600) and ``issuer-state.json``
(mode 0600), which says for every key its algorithm and status, and which key signs:

* ``published``: in the JWK Set; the newest one of each algorithm is that algorithm's active key;
* ``rotated-out``: replaced by a newer key, still in the JWK Set until ``published_until``;
* ``retired``: out of the JWK Set (the private key stays, so tokens can still be made with it);
* ``probe``: published for a while by a run in issuer mode (never active, never the signer), then removed;
* ``spare``: published from the issuer's start but never signing by default: a run in issuer mode signs
  with it, removes it from the set and checks that the API stops accepting it (another spare replaces it).

Every write replaces the state file atomically, so a running issuer sees either state, never half of one.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from reference_impl.signing_keys import public_jwk, thumbprint

from ..errors import ConformanceError

STATE_FILE = "issuer-state.json"
ALGORITHMS = ("RS256", "ES256", "EdDSA")
DEFAULT_SIGNER_ALG = "RS256"
DEFAULT_GRACE_S = 86_400.0
PUBLISHED, ROTATED_OUT, RETIRED, PROBE, SPARE = "published", "rotated-out", "retired", "probe", "spare"
_STATUSES = (PUBLISHED, ROTATED_OUT, RETIRED, PROBE, SPARE)
_STATE_VERSION = 1

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


class IssuerError(ConformanceError):
    """Raised when the keys directory or its state file cannot be used; the message names the fix."""


@dataclass(frozen=True)
class KeyEntry:
    """One key as the state file records it."""

    kid: str
    alg: str
    status: str
    created: float
    published_until: float | None = None

    def published(self, now: float) -> bool:
        if self.status in (PUBLISHED, PROBE, SPARE):
            return True
        return self.status == ROTATED_OUT and self.published_until is not None and now < self.published_until

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kid": self.kid, "alg": self.alg, "status": self.status, "created": self.created}
        if self.published_until is not None:
            data["published_until"] = self.published_until
        return data


@dataclass(frozen=True)
class IssuerState:
    """The state file: the keys in order of creation and the kid of the key that signs."""

    signer: str
    keys: tuple[KeyEntry, ...] = field(default_factory=tuple)

    def entry(self, kid: str) -> KeyEntry | None:
        return next((key for key in self.keys if key.kid == kid), None)

    def active(self, alg: str) -> KeyEntry | None:
        """The newest ``published`` key of ``alg``."""
        candidates = [key for key in self.keys if key.alg == alg and key.status == PUBLISHED]
        return candidates[-1] if candidates else None

    def published(self, now: float | None = None) -> tuple[KeyEntry, ...]:
        moment = time.time() if now is None else now
        return tuple(key for key in self.keys if key.published(moment))

    def to_json(self) -> dict[str, Any]:
        return {"version": _STATE_VERSION, "signer": self.signer, "keys": [key.to_json() for key in self.keys]}


def state_path(keys_dir: Path) -> Path:
    return keys_dir / STATE_FILE


def _corrupt(keys_dir: Path, why: str) -> IssuerError:
    return IssuerError(
        f"the issuer state file {state_path(keys_dir)} is unusable ({why}): restore it, or point --keys-dir at an "
        "empty directory to start with new keys"
    )


def _parse_entry(item: Any, keys_dir: Path) -> KeyEntry:
    if not isinstance(item, dict):
        raise _corrupt(keys_dir, "a key entry is not an object")
    kid, alg, status, created = item.get("kid"), item.get("alg"), item.get("status"), item.get("created")
    until = item.get("published_until")
    if not isinstance(kid, str) or not kid or "/" in kid or kid.startswith("."):
        raise _corrupt(keys_dir, "a key entry has no valid kid")
    if alg not in ALGORITHMS or status not in _STATUSES:
        raise _corrupt(keys_dir, f"key {kid} has an unknown alg or status")
    if not isinstance(created, int | float) or (until is not None and not isinstance(until, int | float)):
        raise _corrupt(keys_dir, f"key {kid} has a non-numeric time")
    return KeyEntry(kid, alg, status, float(created), None if until is None else float(until))


def read_state(keys_dir: Path) -> IssuerState:
    """The state in ``keys_dir``; :class:`IssuerError` when it is missing or corrupt."""
    if not keys_dir.is_dir():
        return _read_state(keys_dir)
    with state_lock(keys_dir, shared=True):
        return _read_state(keys_dir)


def _read_state(keys_dir: Path) -> IssuerState:
    path = state_path(keys_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IssuerError(
            f"no issuer keys in {keys_dir}: start `jwt-conformance issuer --keys-dir {keys_dir}` once to create them"
        ) from None
    except OSError as exc:
        raise IssuerError(f"cannot read {path} ({exc.strerror or exc}): make it readable by this user") from None
    except (ValueError, UnicodeDecodeError):
        raise _corrupt(keys_dir, "not JSON") from None
    if not isinstance(data, dict) or data.get("version") != _STATE_VERSION or not isinstance(data.get("keys"), list):
        raise _corrupt(keys_dir, f"not a version {_STATE_VERSION} state object")
    keys = tuple(_parse_entry(item, keys_dir) for item in data["keys"])
    if len({key.kid for key in keys}) != len(keys):
        raise _corrupt(keys_dir, "two keys share a kid")
    state = IssuerState(str(data.get("signer")), keys)
    signer = state.entry(state.signer)
    if signer is None or signer.status != PUBLISHED:
        raise _corrupt(keys_dir, "the signer is not a published key")
    for key in keys:
        if not (keys_dir / f"{key.kid}.pem").is_file():
            raise _corrupt(keys_dir, f"the private key file {key.kid}.pem is missing")
    return state


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the first byte, replacing it atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_state(keys_dir: Path, state: IssuerState) -> None:
    _write_private(state_path(keys_dir), (json.dumps(state.to_json(), indent=2) + "\n").encode())


def generate_private_key(alg: str) -> PrivateKey:
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise IssuerError(f"unknown algorithm {alg}: use one of {', '.join(ALGORITHMS)}")


def public_members(key: PrivateKey) -> dict[str, str]:
    """The public JWK members of ``key`` (RFC 7517/7518/8037), nothing else."""
    return public_jwk(key.public_key())


def load_private_key(keys_dir: Path, kid: str) -> PrivateKey:
    path = keys_dir / f"{kid}.pem"
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise IssuerError(f"cannot read {path} ({exc.strerror or exc}): make it readable by this user") from None
    except (ValueError, TypeError):
        raise _corrupt(keys_dir, f"{kid}.pem is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise _corrupt(keys_dir, f"{kid}.pem holds an unsupported key type")
    return key


def _new_key(keys_dir: Path, alg: str, now: float) -> KeyEntry:
    key = generate_private_key(alg)
    kid = thumbprint(public_members(key))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_private(keys_dir / f"{kid}.pem", pem)
    return KeyEntry(kid, alg, PUBLISHED, now)


def prepare_dir(keys_dir: Path) -> None:
    """Create ``keys_dir`` (mode 0700) if needed; :class:`IssuerError` unless it is a writable directory."""
    try:
        keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise IssuerError(
            f"--keys-dir {keys_dir} cannot be created ({exc.strerror or exc}): pass a directory this user can write"
        ) from None
    if not keys_dir.is_dir() or not os.access(keys_dir, os.W_OK | os.X_OK | os.R_OK):
        raise IssuerError(f"--keys-dir {keys_dir} is not a writable directory: pass a directory this user can write")


LOCK_FILE = ".state.lock"
_held = threading.local()
P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def state_lock(keys_dir: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold the keys directory's lock: one read-modify-write of the state file at a time (exclusive), and
    readers (shared) never see a state whose key files are being removed. Across threads and processes (a
    run's rotation checks, ``issuer rotate``, the issuer serving); re-entrant in a thread. A directory where
    the lock file cannot be made (read-only) is read without it."""
    held: set[str] = getattr(_held, "dirs", None) or set()
    _held.dirs = held
    name = str(keys_dir.resolve())
    if name in held:
        yield
        return
    try:
        descriptor = os.open(keys_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        if not shared:
            raise
        yield
        return
    with os.fdopen(descriptor, "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        held.add(name)
        try:
            yield
        finally:
            held.discard(name)
            fcntl.flock(lock, fcntl.LOCK_UN)


def _changes_state(func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func(keys_dir, ...)`` under the directory's state lock."""

    @functools.wraps(func)
    def locked(*args: P.args, **kwargs: P.kwargs) -> R:
        keys_dir = args[0]
        assert isinstance(keys_dir, Path)
        prepare_dir(keys_dir)
        with state_lock(keys_dir):
            return func(*args, **kwargs)

    return locked


@_changes_state
def ensure_keys(keys_dir: Path, algorithms: tuple[str, ...] = ALGORITHMS) -> IssuerState:
    """The state in ``keys_dir``; on first use, one new key per algorithm (RS256 signs)."""
    prepare_dir(keys_dir)
    if state_path(keys_dir).exists():
        return read_state(keys_dir)
    now = time.time()
    entries = tuple(_new_key(keys_dir, alg, now) for alg in algorithms)
    signer = next((e for e in entries if e.alg == DEFAULT_SIGNER_ALG), entries[0])
    state = IssuerState(signer.kid, entries)
    write_state(keys_dir, state)
    return state


@_changes_state
def rotate(
    keys_dir: Path, alg: str | None = None, *, grace_s: float = DEFAULT_GRACE_S, retire: bool = False
) -> tuple[IssuerState, KeyEntry, tuple[KeyEntry, ...]]:
    """Add a key of ``alg`` (default: the signer's), make it the signer; the keys it replaces stay published
    for ``grace_s`` seconds, or leave the JWK Set at once with ``retire`` (which also retires every key
    rotated out before). Returns the new state, the new key and the keys that left or will leave the set."""
    prepare_dir(keys_dir)
    state = read_state(keys_dir)
    now = time.time()
    signer = state.entry(state.signer)
    assert signer is not None  # read_state guarantees it
    algorithm = alg or signer.alg
    new = _new_key(keys_dir, algorithm, now)
    keys: list[KeyEntry] = []
    changed: list[KeyEntry] = []
    for key in state.keys:
        updated = key
        if key.alg == algorithm and key.status == PUBLISHED:
            updated = replace(key, status=ROTATED_OUT, published_until=now + grace_s)
        if retire and updated.status == ROTATED_OUT:
            updated = replace(updated, status=RETIRED, published_until=None)
        keys.append(updated)
        if updated != key:
            changed.append(updated)
    new_state = IssuerState(new.kid, (*keys, new))
    write_state(keys_dir, new_state)
    return new_state, new, tuple(changed)


def public_jwks(keys_dir: Path, state: IssuerState, now: float | None = None) -> dict[str, Any]:
    """The JWK Set of the published keys: public members, ``kid``, ``alg`` and ``use`` only."""
    keys = []
    for entry in state.published(now):
        members = public_members(load_private_key(keys_dir, entry.kid))
        keys.append({**members, "kid": entry.kid, "alg": entry.alg, "use": "sig"})
    return {"keys": keys}


@_changes_state
def add_probe_key(keys_dir: Path, alg: str) -> KeyEntry:
    """Publish a new key of ``alg`` that never signs by default (the rotation checks of a run)."""
    state = read_state(keys_dir)
    entry = replace(_new_key(keys_dir, alg, time.time()), status=PROBE)
    write_state(keys_dir, IssuerState(state.signer, (*state.keys, entry)))
    return entry


@_changes_state
def ensure_spare_key(keys_dir: Path) -> KeyEntry:
    """The spare key (published, never the signer), made with the signer's algorithm when there is none."""
    state = read_state(keys_dir)
    spare = next((key for key in state.keys if key.status == SPARE), None)
    if spare is not None:
        return spare
    signer = state.entry(state.signer)
    assert signer is not None  # read_state guarantees it
    entry = replace(_new_key(keys_dir, signer.alg, time.time()), status=SPARE)
    write_state(keys_dir, IssuerState(state.signer, (*state.keys, entry)))
    return entry


@_changes_state
def retire_spare_key(keys_dir: Path, kid: str) -> KeyEntry:
    """Take the spare ``kid`` out of the JWK Set (retired, its private key kept) and publish a new spare."""
    state = read_state(keys_dir)
    now = time.time()
    keys = tuple(
        replace(key, status=RETIRED, published_until=now) if key.kid == kid and key.status == SPARE else key
        for key in state.keys
    )
    write_state(keys_dir, IssuerState(state.signer, keys))
    return ensure_spare_key(keys_dir)


@_changes_state
def remove_probe_keys(keys_dir: Path) -> tuple[str, ...]:
    """Take every probe key out (a run stopped before it could): the issuer does so when it starts."""
    state = read_state(keys_dir)
    probes = tuple(key.kid for key in state.keys if key.status == PROBE)
    for kid in probes:
        remove_probe_key(keys_dir, kid)
    return probes


@_changes_state
def remove_probe_key(keys_dir: Path, kid: str) -> None:
    """Take a probe key out of the JWK Set and the directory (other keys are never removed)."""
    state = read_state(keys_dir)
    entry = state.entry(kid)
    if entry is None or entry.status != PROBE:
        return
    write_state(keys_dir, IssuerState(state.signer, tuple(key for key in state.keys if key.kid != kid)))
    (keys_dir / f"{kid}.pem").unlink(missing_ok=True)
