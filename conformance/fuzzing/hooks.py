"""The hooks file for running ``schemathesis run`` yourself with the kit's contract.

It gives a plain schemathesis run what ``jwt-conformance fuzz`` adds: a token from the password
flow on every operation that declares security, fetched again before it expires; malformed tokens
in place of it; the real login mixed into the token endpoint's data; and the
``unissued_token_rejected`` check. Load it by module name::

    export JWT_CONFORMANCE_USERNAME=johndoe JWT_CONFORMANCE_PASSWORD=secret
    SCHEMATHESIS_HOOKS=conformance.fuzzing.hooks \\
        schemathesis run openapi.yaml --url http://127.0.0.1:8000 --checks all --mode all

``JWT_CONFORMANCE_TOKEN_PATH`` (default ``/token``) names the token endpoint. Without a username
and password only the malformed tokens and the check are added: combine it with the
``[auth.dynamic.openapi.bearerAuth]`` block of ``examples/schemathesis.toml``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import schemathesis

from ..client import Client
from ..config import PASSWORD_ENV, Credentials
from . import checks
from .auth import BearerAuth
from .generation import FuzzTarget, flatmap_case_hook, map_case
from .tokens import TokenSource

USERNAME_ENV = "JWT_CONFORMANCE_USERNAME"
TOKEN_PATH_ENV = "JWT_CONFORMANCE_TOKEN_PATH"


def _credentials() -> Credentials | None:
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    return Credentials(username, password) if username and password else None


CREDENTIALS = _credentials()
TARGET = FuzzTarget(CREDENTIALS, os.environ.get(TOKEN_PATH_ENV) or "/token")
checks.TARGETS[None] = TARGET
schemathesis.hook("flatmap_case")(flatmap_case_hook(TARGET))
schemathesis.hook("map_case")(map_case)
schemathesis.hook("filter_failure")(checks.filter_failure_hook(TARGET))


class EnvironmentPasswordFlow(BearerAuth):
    """Logs in at the base URL of the run (known from the first case) with the environment's credentials."""

    _lock = threading.Lock()

    def get(self, case: Any, ctx: Any) -> str | None:
        with self._lock:
            if type(self).source is None and CREDENTIALS is not None:
                base_url = case.operation.base_url or case.operation.schema.get_base_url()
                type(self).source = TokenSource(Client(base_url), CREDENTIALS, TARGET.token_path)
        return super().get(case, ctx)


if CREDENTIALS is not None:
    schemathesis.auth(refresh_interval=None)(EnvironmentPasswordFlow)
