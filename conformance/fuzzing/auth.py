"""The schemathesis auth provider: the run's current bearer token on operations that declare security."""

from __future__ import annotations

from typing import Any, ClassVar

from .generation import declares_security
from .tokens import RefreshingTokens


class BearerAuth:
    """schemathesis instantiates providers without arguments: subclasses name their ``source``."""

    source: ClassVar[RefreshingTokens | None] = None

    def get(self, case: Any, ctx: Any) -> str | None:
        if self.source is None or not declares_security(ctx.operation):
            return None
        return self.source.token()

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}
