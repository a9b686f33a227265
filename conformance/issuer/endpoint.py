"""``issuer-endpoint.json``: where a running issuer listens and what it publishes as ``issuer``.

The issuer writes it into its keys directory when it starts, so ``jwt-conformance run --issuer-keys DIR``
finds the issuer with no more flags. It holds no secret (mode 0644).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

ENDPOINT_FILE = "issuer-endpoint.json"


@dataclass(frozen=True)
class Endpoint:
    issuer: str  # the iss the issuer publishes
    listening: str  # the URL it answers on (discovery, JWK Set, fetch counter)


def record_endpoint(keys_dir: Path, endpoint: Endpoint) -> None:
    """Write the endpoint file atomically."""
    path = keys_dir / ENDPOINT_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"issuer": endpoint.issuer, "listening": endpoint.listening}, indent=2) + "\n")
    os.replace(temporary, path)


def read_endpoint(keys_dir: Path) -> Endpoint | None:
    """The endpoint the issuer recorded, or ``None`` when it never ran (or the file is unreadable)."""
    try:
        data = json.loads((keys_dir / ENDPOINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    issuer, listening = data.get("issuer"), data.get("listening")
    if not isinstance(issuer, str) or not isinstance(listening, str) or not issuer or not listening:
        return None
    return Endpoint(issuer, listening)
