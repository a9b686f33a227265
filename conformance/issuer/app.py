"""The issuer's HTTP side: OpenID-style discovery and the JWK Set, from a stdlib threading server.

The state file is checked on every request (one ``stat``) and re-read when it changed, so a
rotation made by ``jwt-conformance issuer rotate`` shows in the next answer. A state file that
turns corrupt while serving leaves the last good key set in place (and says so on stderr).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .keys import IssuerError, IssuerState, public_jwks, read_state, state_lock, state_path

DISCOVERY_PATH = "/.well-known/openid-configuration"
AS_METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/.well-known/jwks.json"
FETCHES_PATH = "/conformance/fetches"  # how often the key set and discovery were fetched (issuer-mode checks)


@dataclass(frozen=True)
class IssuerUrls:
    issuer: str

    @property
    def jwks_uri(self) -> str:
        return self.issuer + JWKS_PATH

    @property
    def discovery(self) -> str:
        return self.issuer + DISCOVERY_PATH


class KeyCache:
    """The state and JWK Set of ``keys_dir``, re-read when the state file changes."""

    def __init__(self, keys_dir: Path, state: IssuerState) -> None:
        self.keys_dir = keys_dir
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._state = state

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            info = os.stat(state_path(self.keys_dir))
        except OSError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def state(self) -> IssuerState:
        with self._lock:
            stamp = self._stat()
            if stamp != self._stamp:
                try:
                    self._state = read_state(self.keys_dir)
                    self._stamp = stamp
                except IssuerError as exc:
                    print(f"warning: keeping the previous keys: {exc}", file=sys.stderr, flush=True)
            return self._state

    def jwks(self) -> dict[str, Any]:
        with state_lock(self.keys_dir, shared=True):  # no key file leaves between reading the state and the keys
            return public_jwks(self.keys_dir, self.state())


def discovery_document(urls: IssuerUrls, state: IssuerState) -> dict[str, Any]:
    algorithms = sorted({key.alg for key in state.published()})
    return {
        "issuer": urls.issuer,
        "jwks_uri": urls.jwks_uri,
        "authorization_endpoint": urls.issuer + "/authorize",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": ["none"],
        "grant_types_supported": [],
    }


class _Handler(BaseHTTPRequestHandler):
    server: IssuerServer
    server_version = "jwt-conformance-issuer"
    sys_version = ""

    def _send(self, status: int, body: dict[str, Any], cache: str = "no-store") -> None:
        data = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path in (DISCOVERY_PATH, AS_METADATA_PATH):
                self.server.count("discovery")
                self._send(200, discovery_document(self.server.urls, self.server.keys.state()))
            elif path == JWKS_PATH:
                self.server.count("jwks")
                self._send(200, self.server.keys.jwks())
            elif path == FETCHES_PATH:
                self._send(200, self.server.fetches())
            elif path == "/authorize":
                body = {"error": "unsupported_response_type", "error_description": "this issuer only publishes keys"}
                self._send(400, body)
            else:
                self._send(404, {"error": "not_found"})
        except IssuerError as exc:
            self._send(500, {"error": "server_error", "error_description": str(exc)})

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


class IssuerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, port: int, keys: KeyCache, issuer: str | None) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise IssuerError(
                    f"port {port} on {host} is in use: stop what holds it or pick another --port"
                ) from None
            raise IssuerError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): pick another --host") from None
        self.keys = keys
        self._fetches = {"jwks": 0, "discovery": 0}
        self._fetches_lock = threading.Lock()
        bound_port = self.server_address[1]
        display_host = f"[{host}]" if ":" in host else host
        self.listening = f"http://{display_host}:{bound_port}"
        self.urls = IssuerUrls((issuer or self.listening).rstrip("/"))

    def count(self, document: str) -> None:
        with self._fetches_lock:
            self._fetches[document] += 1

    def fetches(self) -> dict[str, int]:
        """How many times each document was fetched since the issuer started."""
        with self._fetches_lock:
            return dict(self._fetches)
