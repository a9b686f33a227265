"""The embedded reference server for ``jwt-conformance demo``: a real uvicorn on 127.0.0.1, temporary data."""

from __future__ import annotations

import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import Credentials, Keys, RunConfig
from .errors import TargetUnreachableError

# The demo checks with accounts of its own, with random passwords, beside the seeded johndoe/alice:
# a word like "secret" would be redacted wherever it appears in the report.
DEMO_USERS = (("dana", "Dana Demo", False), ("carol", "Carol Second", False), ("erin", "Erin Disabled", True))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Demo:
    config: RunConfig  # targets the server, with a primary, a second and a disabled account
    app: Any  # the reference app, for callers that look inside (benchmarks)


@contextmanager
def demo_server(hash_profile: str = "default") -> Iterator[Demo]:
    """Start the reference server with demo accounts on a free 127.0.0.1 port; stop it afterwards."""
    import uvicorn

    from reference_impl import Settings, create_app
    from reference_impl.cli import seed_demo_users
    from reference_impl.models import UserInDB
    from reference_impl.security import password_hash_for

    with tempfile.TemporaryDirectory(prefix="jwt-conformance-demo-") as data_dir:
        settings = Settings(
            secret_key=secrets.token_urlsafe(48),
            database=Path(data_dir) / "users.db",
            hash_profile="fast" if hash_profile == "fast" else "default",
            # The run itself makes ~80 failed logins in seconds (TOKEN-*, ENUM-002): a throttle that
            # stops them would leave those checks undecided. Throttling is tested on its own.
            login_max_failures=1000,
            login_max_failures_per_client=10_000,
        )
        app = create_app(settings)
        store = app.state.reference.store
        seed_demo_users(store, settings)
        hasher = password_hash_for(settings.hash_profile)
        accounts = []
        for username, full_name, disabled in DEMO_USERS:
            credentials = Credentials(username, secrets.token_urlsafe(16))
            hashed = hasher.hash(credentials.password)
            email = f"{username}@example.com"
            store.add(
                UserInDB(username=username, full_name=full_name, email=email, hashed_password=hashed, disabled=disabled)
            )
            accounts.append(credentials)
        primary, second, disabled_user = accounts
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="demo-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise TargetUnreachableError(f"the embedded reference server did not start on 127.0.0.1:{port}")
            time.sleep(0.02)
        try:
            config = RunConfig(
                base_url=f"http://127.0.0.1:{port}",
                primary=primary,
                second=second,
                disabled=disabled_user,
                keys=Keys(hs_secret=settings.secret_key),  # the demo knows its server's key: K checks run too
            )
            yield Demo(config, app)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            app.state.reference.close()
