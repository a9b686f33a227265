"""``jwt-conformance issuer``: prepare the keys, listen, print what the API's test configuration needs."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import TextIO

from .app import IssuerServer, KeyCache
from .endpoint import Endpoint, record_endpoint
from .keys import ensure_keys, ensure_spare_key, remove_probe_keys


def start(keys_dir: Path, host: str = "127.0.0.1", port: int = 9999, issuer: str | None = None) -> IssuerServer:
    """The issuer bound and ready to serve (keys created on first use); :class:`IssuerError` if it cannot be."""
    ensure_keys(keys_dir)
    remove_probe_keys(keys_dir)  # left by a run that was killed before it could remove them
    ensure_spare_key(keys_dir)  # published from now on, so that an API that loads keys once knows it
    state = ensure_keys(keys_dir)
    server = IssuerServer(host, port, KeyCache(keys_dir, state), issuer)
    record_endpoint(keys_dir, Endpoint(server.urls.issuer, server.listening))  # found by `run --issuer-keys DIR`
    return server


def banner(server: IssuerServer) -> list[str]:
    urls = server.urls
    state = server.keys.state()
    signer = state.entry(state.signer)
    published = ", ".join(f"{key.alg} {key.kid}" for key in state.published())
    return [
        f"issuer:    {urls.issuer}",
        f"jwks_uri:  {urls.jwks_uri}",
        f"discovery: {urls.discovery}",
        f"signer:    {signer.alg if signer else '?'} {state.signer}",
        f"published: {published}",
        f"listening: {server.listening}",
        f"example:   JWT_ISSUER={urls.issuer} JWT_JWKS_URL={urls.jwks_uri}",
    ]


def serve(server: IssuerServer, out: TextIO = sys.stdout) -> None:
    """Print the banner, then serve until SIGTERM or Ctrl-C."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    for line in banner(server):
        print(line, file=out)
    out.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
