"""Running checks in-process against the reference app or a broken twin of it.

A broken twin violates exactly one rule. Three ways to make one:
- ``with_components(app, tokens=..., passwords=...)``: the reference app with one service swapped;
- ``rewrite(app, fn)``: the reference app behind an ASGI wrapper that edits answers (drop a header,
  change a status or body) for the requests ``fn`` chooses;
- a tiny FastAPI app of its own (see ``tutorial_app`` for the FastAPI-tutorial dialect).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from conformance.client import Client, Redactor
from conformance.config import Credentials, RunConfig
from conformance.model import Profile, Result, Status
from conformance.registry import all_checks, select
from conformance.runner import run
from conformance.target_contract import TargetContract

from ..conftest import PASSWORD

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]

PRIMARY = Credentials("bob", PASSWORD)
SECOND = Credentials("carol", "carol's own password")
DISABLED = Credentials("alice", "secretalice")
BASE_URL = "http://127.0.0.1"


def config_for(**changes: Any) -> RunConfig:
    """A RunConfig for the in-process reference app: bob (primary), carol (second), alice (disabled)."""
    config = RunConfig(base_url=BASE_URL, primary=PRIMARY, second=SECOND, disabled=DISABLED, workers=2)
    return replace(config, **changes)


KIT = "kit"  # run_checks(contract=KIT): the target claims the kit's current contract


def run_checks(
    app: Any,
    select_ids: Iterable[str],
    *,
    contract: str | Mapping[str, Any] | None = KIT,
    **config_changes: Any,
) -> dict[str, Result]:
    """Run the selected checks (IDs or prefixes, up to the config's --level) against ``app``; results by ID.

    ``contract``: by default the target claims the kit's current contract (the reference app does);
    ``None`` reads it as the CLI does, from the config, else from what the target serves.
    """
    config = config_for(**config_changes)
    checks = select(all_checks(), tuple(select_ids), level=config.level)
    target = TargetContract.kit() if isinstance(contract, str) else contract
    with TestClient(app, base_url=BASE_URL, raise_server_exceptions=False) as http:
        client = Client(BASE_URL, http=http, redactor=Redactor(config.secrets))
        results = list(run(config, checks, contract=target, client=client))
    return {result.id: result for result in results}


def statuses(results: dict[str, Result]) -> dict[str, Status]:
    return {check_id: result.status for check_id, result in results.items()}


def explain(results: dict[str, Result]) -> str:
    """A readable dump for assertion messages."""
    return "\n".join(f"{r.id}: {r.status} {r.message}" for r in results.values())


def with_components(app: FastAPI, **components: Any) -> FastAPI:
    """The same app with some of its services (store, passwords, tokens, settings) replaced."""
    app.state.reference = replace(app.state.reference, **components)
    return app


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def set_header(self, name: str, value: str | None) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]
        if value is not None:
            self.headers.append((name, value))

    def json(self) -> Any:
        return json.loads(self.body)

    def set_json(self, value: Any, status: int | None = None) -> None:
        self.body = json.dumps(value).encode()
        self.set_header("content-type", "application/json")
        if status is not None:
            self.status = status


Rewrite = Callable[[Scope, Answer], None]


def rewrite(app: ASGIApp, edit: Rewrite) -> ASGIApp:
    """Wrap ``app``; ``edit(scope, answer)`` may change each HTTP answer in place before it is sent."""

    async def wrapper(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
                    answer = Answer(start["status"], headers, b"".join(chunks))
                    edit(scope, answer)
                    answer.set_header("content-length", str(len(answer.body)))
                    await send(
                        {
                            "type": "http.response.start",
                            "status": answer.status,
                            "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers],
                        }
                    )
                    await send({"type": "http.response.body", "body": answer.body})
            else:
                await send(message)

        await app(scope, receive, capture)

    return wrapper


async def answer(send: Any, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
    """Answer an ASGI request directly (a twin speaking for the app): JSON ``body``, if any, and ``headers``."""
    content = b"" if body is None else json.dumps(body).encode()
    fields = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if body is not None:
        fields.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": fields})
    await send({"type": "http.response.body", "body": content})


def on(method: str, path: str, edit: Callable[[Answer], None]) -> Rewrite:
    """A rewrite that applies ``edit`` only to answers of ``method path``."""

    def chosen(scope: Scope, answer: Answer) -> None:
        if scope["method"] == method and scope["path"] == path:
            edit(answer)

    return chosen


__all__ = [
    "BASE_URL",
    "KIT",
    "DISABLED",
    "PRIMARY",
    "SECOND",
    "Answer",
    "answer",
    "Profile",
    "Status",
    "config_for",
    "explain",
    "on",
    "rewrite",
    "run_checks",
    "statuses",
    "with_components",
]
