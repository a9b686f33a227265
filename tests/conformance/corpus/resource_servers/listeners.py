"""Small HTTP listeners on 127.0.0.1 that record every path asked of them.

:class:`KeySetListener` serves one JWK Set at any path (an attacker's ``jku`` target);
:class:`CountingProxy` forwards GETs to the issuer, so that the JWKS fetches of a resource server
can be counted without touching the issuer.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2 as httpx


class _Handler(BaseHTTPRequestHandler):
    server: Listener

    def do_GET(self) -> None:
        self.server.record(self.path)
        status, content_type, body = self.server.answer(self.path)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Listener(ThreadingHTTPServer):
    """Serves from a thread until :meth:`stop`; ``paths`` holds every path asked, in order."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._lock = threading.Lock()
        self._paths: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def record(self, path: str) -> None:
        with self._lock:
            self._paths.append(path)

    def count(self, path: str) -> int:
        with self._lock:
            return self._paths.count(path)

    def answer(self, path: str) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class KeySetListener(Listener):
    def __init__(self, jwks: dict[str, Any]) -> None:
        self.body = json.dumps(jwks).encode()
        super().__init__()

    def answer(self, path: str) -> tuple[int, str, bytes]:
        return 200, "application/json", self.body


class CountingProxy(Listener):
    """Forwards every GET to ``upstream`` (set once the issuer behind it listens)."""

    upstream = ""

    def answer(self, path: str) -> tuple[int, str, bytes]:
        try:
            response = httpx.get(self.upstream + path, timeout=5.0, trust_env=False)
        except httpx.TransportError:
            return 502, "text/plain", b"upstream unreachable"
        return response.status_code, response.headers.get("content-type", "text/plain"), response.content
