"""What a refused password-grant login means for a run: wrong credentials, throttling or an unavailable server
stop it (exit 2)."""

from __future__ import annotations

from typing import Any

from .errors import BaselineLoginError


def rejection_error(
    endpoint: str, username: str, status: int, body: Any, retry_after: str | None
) -> BaselineLoginError | None:
    """The error that stops the run for a well-formed refusal; ``None`` for a malformed answer (a defect)."""
    if status == 429:
        retry = f", Retry-After {retry_after} s" if retry_after else ""
        return BaselineLoginError(
            f"{endpoint} is throttling logins for {username!r} (429{retry}): wait, or run with a dedicated test account"
        )
    if status == 503 and retry_after:
        return BaselineLoginError(
            f"{endpoint} is unavailable (503, Retry-After {retry_after} s): run again when the server is available"
        )
    error = body.get("error") if isinstance(body, dict) else None
    if (status == 400 and error == "invalid_grant") or status == 401:
        reason = f"400 {error}" if status == 400 else "401"
        return BaselineLoginError(
            f"{endpoint} rejected the credentials of {username!r} ({reason}): check --username and --password "
            "(or users.primary in the config file)"
        )
    return None
