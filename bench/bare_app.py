"""The baseline of bench_server.py: ``GET /users/me`` answering the demo user's JSON with no authentication.

Served like ``jwt-reference serve`` serves the reference app: uvicorn, one worker, the same logging
configuration (access log included), no ``Server`` header, no proxy headers.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from reference_impl.logging_config import log_config

BODY = {
    "username": "johndoe",
    "email": "johndoe@example.com",
    "full_name": "John Doe",
    "disabled": False,
    "scopes": ["me", "items:read", "admin"],
}
PRIVATE = {"Cache-Control": "private, no-store"}

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/users/me", response_model=None)
async def read_users_me() -> JSONResponse:
    return JSONResponse(BODY, headers=PRIVATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    args = parser.parse_args()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        log_config=log_config(args.log_level),
        server_header=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
