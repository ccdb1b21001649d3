"""Shared helpers of the coherence tests (imported by name: tests/ has no packages)."""

from __future__ import annotations

import httpx
from argon2 import PasswordHasher

PASSWORD = "correct horse battery staple"
T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


def cheap_hasher() -> PasswordHasher:
    # Production uses argon2-cffi's defaults; tests only need the same code path, faster.
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


async def login(api: httpx.AsyncClient, password: str = PASSWORD, scope: str = "",
                username: str = "admin") -> httpx.Response:
    data = {"username": username, "password": password}
    if scope:
        data["scope"] = scope
    return await api.post("/auth/token", data=data)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
