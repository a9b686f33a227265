"""The HTTP client against hostile targets: hangs, resets, huge and malformed answers, redirects."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from conformance.client import Client, Redactor, TransportError
from conformance.forge import flip_last_bit, make_hs
from conformance.model import Exchange

Handler = Callable[[socket.socket], None]


@pytest.fixture
def client_for() -> Iterator[Callable[..., Client]]:
    """Make Clients that are closed after the test (no leaked sockets)."""
    made: list[Client] = []

    def make(*args: Any, **kwargs: Any) -> Client:
        made.append(Client(*args, **kwargs))
        return made[-1]

    yield make
    for client in made:
        client.close()


def answer(status_line: str, headers: dict[str, str], body: bytes) -> Handler:
    def handler(conn: socket.socket) -> None:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        conn.sendall(f"HTTP/1.1 {status_line}\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)

    return handler


def test_a_hanging_target_is_a_transport_error_within_the_timeout(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    url = raw_server(lambda conn: time.sleep(3))
    client = client_for(url, timeout_s=0.5)
    recorder: list[Exchange] = []
    started = time.monotonic()
    with pytest.raises(TransportError, match="no answer within 0.5 s"):
        client.request("GET", "/users/me", recorder=recorder)
    assert time.monotonic() - started < 2.5
    assert [(e.error, e.status) for e in recorder] == [
        ("no answer within 0.5 s (retried once)", None),
        ("no answer within 0.5 s", None),
    ]


def test_a_connection_reset_is_a_transport_error(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    def reset(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

    client = client_for(raw_server(reset), timeout_s=2)
    with pytest.raises(TransportError):
        client.request("GET", "/")


def test_a_huge_answer_is_capped(raw_server: Callable[[Handler], str], client_for: Callable[..., Client]) -> None:
    url = raw_server(answer("200 OK", {"Content-Type": "application/json"}, b"[" + b"1," * 5_000_000 + b"1]"))
    client = client_for(url, max_response_bytes=65_536)
    response = client.request("GET", "/")
    assert response.truncated
    assert len(response.content) == 65_536
    assert response.json() is None


@pytest.mark.parametrize("body", [b"<html><body>Login</body></html>", b'{"access_token": ', b"\xff\xfe\x00"])
def test_html_and_broken_json_are_just_not_json(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client], body: bytes
) -> None:
    client = client_for(raw_server(answer("200 OK", {"Content-Type": "application/json"}, body)))
    response = client.request("GET", "/")
    assert response.status == 200
    assert response.json() is None
    assert isinstance(response.text, str)


def test_redirects_are_never_followed(raw_server: Callable[[Handler], str], client_for: Callable[..., Client]) -> None:
    client = client_for(raw_server(answer("307 Temporary Redirect", {"Location": "http://example.invalid/x"}, b"")))
    response = client.request("GET", "/users/me")
    assert response.status == 307
    assert response.header("location") == "http://example.invalid/x"


def test_exchanges_are_redacted_and_reproducible(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    client = client_for(
        raw_server(answer("200 OK", {}, b'{"echo": "p@ss word"}')), redactor=Redactor({"p@ss word": "${PASSWORD}"})
    )
    recorder: list[Exchange] = []
    client.request("POST", "/token", data={"username": "bob", "password": "p@ss word"}, recorder=recorder)
    exchange = recorder[0]
    assert "p@ss" not in repr(exchange.to_dict())
    assert exchange.request_body == "username=bob&password=${PASSWORD}"
    assert exchange.response_body == '{"echo": "${PASSWORD}"}'
    assert exchange.curl.endswith(f'--data-binary "username=bob&password=${{PASSWORD}}" {client.base_url}/token')


def test_every_token_in_any_answer_is_redacted_from_then_on(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    """A refused login (400) that still carries tokens: they are placeholders in that exchange and every later one."""
    access = make_hs({"alg": "HS256"}, {"sub": "bob", "jti": "1"}, b"the server's own key, unknown to us")
    body = json.dumps({"error": "invalid_grant", "access_token": access, "refresh_token": "r-0123456789abcdefghij"})
    client = client_for(raw_server(answer("400 Bad Request", {"Content-Type": "application/json"}, body.encode())))
    recorder: list[Exchange] = []
    client.request("POST", "/token", data={"username": "bob", "password": "x"}, recorder=recorder)
    assert recorder[0].response_body == (
        '{"error": "invalid_grant", "access_token": "${ACCESS_TOKEN}", "refresh_token": "${REFRESH_TOKEN}"}'
    )
    flipped = f"{access.rsplit('.', 1)[0]}.{flip_last_bit(access.rsplit('.', 1)[1])}"
    client.request("GET", "/users/me", headers={"Authorization": f"Bearer {flipped}"}, recorder=recorder)
    assert recorder[1].request_headers[0] == ("Authorization", "Bearer ${FORGED_TOKEN_1}")
    assert recorder[1].curl == (
        f'curl -i -X GET -H "Authorization: Bearer ${{FORGED_TOKEN_1}}" {client.base_url}/users/me'
        "  # ${FORGED_TOKEN_1} = built from ${ACCESS_TOKEN}: header kept, claims kept, "
        "signature with 1 character(s) changed"
    )


# -- faults are not verdicts: a dropped connection or a timeout is tried once more ----------------------------------


def first_connection(fault: Handler, then: Handler) -> Handler:
    """``fault`` on the first connection, ``then`` on every later one."""
    seen: list[bool] = []

    def handler(conn: socket.socket) -> None:
        if not seen:
            seen.append(True)
            fault(conn)
        else:
            then(conn)

    return handler


def drop(conn: socket.socket) -> None:
    """Close the connection without an answer (the fixture closes it on return)."""


def test_a_dropped_connection_is_retried_once_and_recorded_as_retried(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    client = client_for(raw_server(first_connection(drop, answer("200 OK", {}, b'{"ok": true}'))), timeout_s=2)
    recorder: list[Exchange] = []
    response = client.request("GET", "/users/me", recorder=recorder)
    assert (response.status, response.json()) == (200, {"ok": True})
    assert [e.status for e in recorder] == [None, 200]
    assert recorder[0].error is not None and recorder[0].error.endswith("(retried once)")
    assert recorder[1].error is None


def test_a_timeout_is_retried_and_the_answer_is_timed_on_its_own_attempt(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    # The fixture serves one connection at a time: the retry is answered once the first hang (1.2 s) ends.
    hang = first_connection(lambda conn: time.sleep(1.2), answer("401 Unauthorized", {}, b""))
    client = client_for(raw_server(hang), timeout_s=1.0)
    recorder: list[Exchange] = []
    started = time.monotonic()
    response = client.request("GET", "/users/me", recorder=recorder)
    assert response.status == 401
    assert time.monotonic() - started > 1.0
    assert response.elapsed_s < 1.0  # the lost first attempt is not in the answer's time
    assert recorder[0].error == "no answer within 1 s (retried once)"


def test_a_fault_on_both_attempts_is_a_transport_error_after_one_retry(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    client = client_for(raw_server(drop), timeout_s=2)
    recorder: list[Exchange] = []
    with pytest.raises(TransportError, match=r"\(after one retry\)$"):
        client.request("GET", "/users/me", recorder=recorder)
    assert [e.status for e in recorder] == [None, None]


def test_a_caller_that_tests_for_a_hang_opts_out_of_the_retry(
    raw_server: Callable[[Handler], str], client_for: Callable[..., Client]
) -> None:
    client = client_for(raw_server(first_connection(drop, answer("200 OK", {}, b""))), timeout_s=2)
    recorder: list[Exchange] = []
    with pytest.raises(TransportError) as raised:
        client.request("GET", "/users/me", recorder=recorder, retry=False)
    assert "retry" not in str(raised.value)
    assert len(recorder) == 1 and recorder[0].error is not None and "retried" not in recorder[0].error
