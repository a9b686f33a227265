"""HTTP to the target: timeouts, capped bodies, no redirects followed, every exchange recorded and redacted."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx2 as httpx

from .model import Exchange
from .redaction import Redactor

__all__ = ["Client", "HeaderList", "Redactor", "Response", "TransportError"]

HeaderList = Sequence[tuple[str, str]] | Mapping[str, str]
EXCERPT_CHARS = 2000


class TransportError(Exception):
    """Raised when the target gives no HTTP answer (refused, reset, timed out); the runner reports ``error``."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: httpx.Headers
    content: bytes
    truncated: bool
    elapsed_s: float

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The parsed JSON body, or ``None`` when the body is not JSON."""
        try:
            return json.loads(self.content)
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def header_values(self, name: str) -> list[str]:
        return self.headers.get_list(name)


def _curl(method: str, url: str, headers: Sequence[tuple[str, str]], body: str | None) -> str:
    parts = ["curl", "-i", "-X", method]
    for name, value in headers:
        if name.lower() in ("host", "content-length", "accept-encoding", "connection", "user-agent", "accept"):
            continue
        parts += ["-H", f"{name}: {value}"]
    if body:
        parts += ["--data-binary", body]
    parts.append(url)
    # Placeholders like ${PASSWORD} stay expandable: quote with double quotes where they occur.
    rendered = []
    for part in parts:
        quoted = shlex.quote(part)
        if "${" in part and "'" in quoted:
            quoted = '"' + part.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'
        rendered.append(quoted)
    return " ".join(rendered)


def _excerpt(data: bytes | None, redact: Redactor) -> str | None:
    if data is None:
        return None
    text = data[:EXCERPT_CHARS].decode("utf-8", errors="replace")
    suffix = f"... [{len(data)} bytes]" if len(data) > EXCERPT_CHARS else ""
    return redact(text) + suffix


class Client:
    """One target. Thread-safe: checks running concurrently share it; each passes its own recorder."""

    def __init__(
        self,
        base_url: str,
        *,
        http: httpx.Client | None = None,
        timeout_s: float = 10.0,
        max_response_bytes: int = 1_048_576,
        redactor: Redactor | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = http or httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False)
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self.redact = redactor or Redactor()

    def close(self) -> None:
        self.http.close()

    def url(self, path: str) -> str:
        return path if "://" in path else self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: HeaderList | None = None,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        content: bytes | str | None = None,
        recorder: list[Exchange] | None = None,
        timeout_s: float | None = None,
        retry: bool = True,
    ) -> Response:
        header_list = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        if not any(name.lower() == "accept-encoding" for name, _ in header_list):
            header_list.append(("Accept-Encoding", "identity"))  # no decompression bombs
        if data is not None:
            pairs = list(data.items()) if isinstance(data, Mapping) else list(data)
            content = urlencode(pairs)
            if not any(name.lower() == "content-type" for name, _ in header_list):
                header_list.append(("Content-Type", "application/x-www-form-urlencoded"))
        body = content.encode() if isinstance(content, str) else content
        url = self.url(path)
        if params:
            url += ("&" if "?" in url else "?") + urlencode(list(params.items()))
        # A dropped connection or a timeout is a fault of the moment, not an answer: it is tried once more
        # (and the first attempt stays in the evidence, marked as retried) unless the caller measures time
        # or tests for a hang (``retry=False``).
        attempts = 2 if retry else 1
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            request = self.http.build_request(
                method, url, headers=httpx.Headers(header_list), content=body, timeout=timeout_s or self.timeout_s
            )
            response: Response | None = None
            error: str | None = None
            transient = False
            try:
                raw = self.http.send(request, stream=True, follow_redirects=False)
                try:
                    chunks: list[bytes] = []
                    size = 0
                    truncated = False
                    for chunk in raw.iter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > self.max_response_bytes:
                            truncated = True
                            break
                    content_bytes = b"".join(chunks)[: self.max_response_bytes]
                finally:
                    raw.close()
                elapsed = time.perf_counter() - started
                response = Response(raw.status_code, raw.headers, content_bytes, truncated, elapsed)
                self._learn(url, header_list, body, response)
            except httpx.TimeoutException:
                error, transient = f"no answer within {timeout_s or self.timeout_s:g} s", True
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                # Refused, reset or closed without an answer; not a request this client could not even send.
                transient = isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError)
            finally:
                again = response is None and transient and attempt < attempts
                if again and error is not None:
                    error += " (retried once)"
                if recorder is not None:
                    recorder.append(self._exchange(method, url, header_list, body, response, error, started))
            if not again:
                break
        if response is None:
            after = " (after one retry)" if attempt > 1 else ""
            raise TransportError(f"{method} {self.redact(url)}: {error}{after}")
        return response

    def _learn(self, url: str, headers: list[tuple[str, str]], body: bytes | None, response: Response) -> None:
        """Every credential in any answer (recorded or not) is known to the redactor before anything is shown."""
        sent = " ".join([url, *(value for _, value in headers), (body or b"").decode("utf-8", errors="replace")])
        self.redact.learn_answer(sent, response.content, response.headers.values())

    def _exchange(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | None,
        response: Response | None,
        error: str | None,
        started: float,
    ) -> Exchange:
        redact = self.redact
        safe_headers = [(name, redact(value)) for name, value in headers]
        safe_body = _excerpt(body, redact)
        return Exchange(
            method=method,
            url=redact(url),
            request_headers=tuple(safe_headers),
            request_body=safe_body,
            status=None if response is None else response.status,
            response_headers={} if response is None else {k: redact(v) for k, v in response.headers.items()},
            response_body=None if response is None else _excerpt(response.content, redact),
            curl=redact.annotate(
                _curl(method, redact(url), safe_headers, safe_body if body and len(body) <= EXCERPT_CHARS else None)
            ),
            elapsed_s=time.perf_counter() - started,
            error=error,
        )
