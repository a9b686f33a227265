"""A callback listener on 127.0.0.1: serves attacker documents and records every request that reaches it.

Used to observe server-side request forgery: a target that dereferences a URL taken from a token
(``jku``, ``x5u``) shows up here as a recorded request. The listener is bounded: it records at most
``max_hits`` requests, never reads request bodies, gives each connection a short socket timeout and
stops (joining its threads) when the ``with`` block ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

HOST = "127.0.0.1"
MAX_HEADER_CHARS = 512


class _Server(ThreadingHTTPServer):
    """One thread per connection, at most ``max_connections`` at once; the others are closed unanswered."""

    daemon_threads = True
    block_on_close = True  # server_close() joins the handler threads (bounded by their socket timeout)

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        max_connections: int,
        on_dropped: Callable[[], None],
    ) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._on_dropped = on_dropped

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self._on_dropped()  # still a request that reached us: counted, not answered
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


@dataclass(frozen=True)
class Hit:
    """One request the listener received."""

    method: str
    path: str
    client: str
    headers: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        agent = next((value for name, value in self.headers if name.lower() == "user-agent"), None)
        return f"{self.method} {self.path} from {self.client}" + (f" (User-Agent: {agent})" if agent else "")


@dataclass(frozen=True)
class Document:
    content_type: str
    body: bytes


class Listener:
    """``with Listener({"/jwks.json": Document(...)}) as listener:`` serves the documents on a free port."""

    def __init__(
        self,
        documents: Mapping[str, Document],
        *,
        max_hits: int = 50,
        max_connections: int = 16,
        socket_timeout_s: float = 2.0,
    ) -> None:
        self._documents = dict(documents)
        self._max_hits = max_hits
        self._max_connections = max_connections
        self._socket_timeout_s = socket_timeout_s
        self._hits: list[Hit] = []
        self._seen = 0
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> Listener:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the listener is already running")
        server = _Server((HOST, 0), self._handler_class(), self._max_connections, self._record_dropped)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="conformance-listener", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=self._socket_timeout_s + 1)
        self._server = self._thread = None

    # -- what the checks use ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the listener is not running")
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    @property
    def hits(self) -> tuple[Hit, ...]:
        """The requests received so far (at most ``max_hits`` are kept)."""
        with self._changed:
            return tuple(self._hits)

    @property
    def seen(self) -> int:
        """How many requests arrived, including those beyond ``max_hits`` and connections dropped unanswered."""
        with self._changed:
            return self._seen

    def wait_for_hit(self, timeout_s: float) -> tuple[Hit, ...]:
        """Wait up to ``timeout_s`` for a first request (returns at once if one came); the hits so far."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._changed:
            while self._seen == 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return tuple(self._hits)

    # -- the HTTP side ----------------------------------------------------------------------------
    def _record(self, hit: Hit) -> None:
        with self._changed:
            self._seen += 1
            if len(self._hits) < self._max_hits:
                self._hits.append(hit)
            self._changed.notify_all()

    def _record_dropped(self) -> None:
        with self._changed:
            self._seen += 1
            self._changed.notify_all()

    def _document(self, path: str) -> Document | None:
        return self._documents.get(path.split("?", 1)[0])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        listener = self

        class Handler(BaseHTTPRequestHandler):
            timeout = listener._socket_timeout_s
            server_version = "conformance-listener"
            sys_version = ""

            def _answer(self, with_body: bool) -> None:
                headers = tuple((name, value[:MAX_HEADER_CHARS]) for name, value in self.headers.items())
                listener._record(Hit(self.command, self.path[:MAX_HEADER_CHARS], self.client_address[0], headers))
                document = listener._document(self.path)
                if document is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", document.content_type)
                self.send_header("Content-Length", str(len(document.body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if with_body:
                    self.wfile.write(document.body)

            def do_GET(self) -> None:
                self._answer(with_body=True)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def do_POST(self) -> None:
                self._answer(with_body=True)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


__all__ = ["Document", "Hit", "Listener"]
