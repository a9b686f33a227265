"""ASGI apps served by a real uvicorn on 127.0.0.1 (in a thread of the test process), over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from conformance.demo import free_port

START_TIMEOUT = 20.0


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port; yield its base URL; stop it afterwards."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, name=f"fuzz-target-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
