"""Several worker processes: ``jwt-reference serve --workers N`` (uvicorn's supervisor runs them).

Each worker is a fresh process that builds its own app from the environment, which the serving
command prepared and validated before starting any worker. Nothing a worker keeps in memory can
disagree with another worker about a security decision: users (and whether they are disabled),
refresh-token families, revocations and login-throttle counts are read from the shared database on
every request that depends on them; the verified-token cache of each worker holds only what a
signature proves (which cannot change) and revocation is looked up on every use; the signing keys
are read from configuration at start, the same in every worker (rotate them by restarting: SIGHUP
to the parent restarts the workers one by one).
"""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import click

from .settings import load_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

APP_FACTORY = f"{__name__}:worker_app"
# Seconds that requests in flight get to finish after SIGTERM (or SIGINT) before they are cancelled and
# the process ends: as long as a write may wait for a locked database (the stores' busy timeout), and no
# longer than process managers wait before they send SIGKILL (docker stop: 10 s; Kubernetes: 30 s).
GRACEFUL_SHUTDOWN_S = 10


class WorkerCount(click.ParamType[int]):
    """A positive number of worker processes, or ``auto``: one per core."""

    name = "N|auto"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            count = value
        elif isinstance(value, str) and value.strip().lower() == "auto":
            return os.cpu_count() or 1
        else:
            try:
                count = int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number of workers: use a positive integer or 'auto'", param, ctx)
        if count < 1:
            self.fail(f"{count} is not a number of workers: use a positive integer or 'auto'", param, ctx)
        return count


def run_workers(count: int, options: dict[str, Any]) -> None:
    """Serve with ``count`` worker processes on one listening socket, bound here and shared by all.

    What ``uvicorn.run(..., workers=count)`` does, with one difference: the socket has TCP_NODELAY,
    which every accepted connection inherits. Without it (the socket uvicorn binds for its workers
    is not marked as TCP, so asyncio does not set it), a response written in two parts waits for
    the client's delayed acknowledgement: about 40 ms on every request.
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(APP_FACTORY, factory=True, workers=count, **options)
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def worker_app() -> FastAPI:
    """The app of one worker process (uvicorn calls this factory in every worker it starts)."""
    from .main import create_app  # here: the command line imports this module for ``WorkerCount`` alone

    app = create_app(load_settings())
    opened = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with opened(application) as state:
            yield state
        app.state.reference.close()  # after the last request of this worker

    app.router.lifespan_context = lifespan
    gc.collect()  # see ``serve``: what lives as long as the process stays out of full collections
    gc.freeze()
    return app
