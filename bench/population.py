"""Users for the benchmarks, made the way a deployment makes them: ``POST /users`` with the demo
administrator's token, then real password logins. Bounded concurrency, 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import secrets

import httpx2

REQUEST_TIMEOUT = 30.0
CONCURRENCY = 8


async def _admin_token(client: httpx2.AsyncClient) -> str:
    form = {"grant_type": "password", "username": "johndoe", "password": "secret", "scope": "admin"}
    token: str = (await client.post("/token", data=form)).raise_for_status().json()["access_token"]
    return token


async def create_users(base_url: str, names: list[str]) -> dict[str, str]:
    """The users ``names`` (scope ``me``, random passwords) made through ``POST /users``: name -> password."""
    users = {name: secrets.token_urlsafe(12) for name in names}
    async with httpx2.AsyncClient(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        headers = {"Authorization": f"Bearer {await _admin_token(client)}"}
        gate = asyncio.Semaphore(CONCURRENCY)

        async def create(name: str, password: str) -> None:
            async with gate:
                body = {"username": name, "password": password, "scopes": ["me"]}
                (await client.post("/users", json=body, headers=headers)).raise_for_status()

        await asyncio.gather(*(create(name, password) for name, password in users.items()))
    return users


async def log_in(base_url: str, users: dict[str, str]) -> list[str]:
    """One access token per user, from a real password login each."""
    async with httpx2.AsyncClient(base_url=base_url, trust_env=False, timeout=REQUEST_TIMEOUT) as client:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def login(name: str, password: str) -> str:
            async with gate:
                form = {"grant_type": "password", "username": name, "password": password}
                token: str = (await client.post("/token", data=form)).raise_for_status().json()["access_token"]
                return token

        return list(await asyncio.gather(*(login(name, password) for name, password in users.items())))


def population(base_url: str, count: int, prefix: str = "bench-") -> list[str]:
    """``count`` new users' access tokens (sync wrapper for bench_server.py)."""

    async def make() -> list[str]:
        users = await create_users(base_url, [f"{prefix}{i:04d}" for i in range(count)])
        return await log_in(base_url, users)

    return asyncio.run(make())
