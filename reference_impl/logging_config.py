"""Logging for ``jwt-reference serve``: uvicorn's access log without query strings.

A client that puts credentials or a token in the URI (``?password=...``, ``?access_token=...``)
must not get them written to the log, so the access log shows the path only.
"""

from __future__ import annotations

import logging
from typing import Any


class RedactQueryFilter(logging.Filter):
    """Drops the query string from uvicorn access-log records (args: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            path = args[2].split("?", 1)[0] + "?[redacted]"
            record.args = (args[0], args[1], path, args[3], args[4])
        return True


def log_config(level: str) -> dict[str, Any]:
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG}
    config["filters"] = {"redact_query": {"()": f"{__name__}.RedactQueryFilter"}}
    config["handlers"] = {name: {**handler} for name, handler in LOGGING_CONFIG["handlers"].items()}
    config["handlers"]["access"]["filters"] = ["redact_query"]
    config["loggers"] = {name: {**logger} for name, logger in LOGGING_CONFIG["loggers"].items()}
    config["loggers"]["uvicorn"]["level"] = level.upper()
    return config
