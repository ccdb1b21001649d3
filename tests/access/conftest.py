"""Access fixtures: a store of each backend, and an in-process gateway over a fake upstream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from wilton_core.store import SqlStore, open_store
from wilton_core.testing.fake_upstream import FakeUpstream

MASTER = "master-key-for-tests-0123456789"

CONFIG = """
[[models]]
id = "local-a"
provider = "openai"
model = "local-a"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "standard"

[[models]]
id = "local-b"
provider = "openai"
model = "local-b"
base_url = "{fake}/v1"
tier = "selfhost"
is_local = true
capability = "standard"

[[models]]
id = "api-x"
provider = "openai"
model = "api-x"
base_url = "{fake}/v1"
api_key_env = "WILTON_TEST_API_X_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
input_cost_per_mtok = {in_cost}
output_cost_per_mtok = {out_cost}

[routing]
backoff_base_s = 0.0
max_attempts_per_model = 1
"""


def write_config(path: Path, fake_url: str, in_cost: float = 1000.0, out_cost: float = 1000.0) -> Path:
    path.write_text(CONFIG.format(fake=fake_url, in_cost=in_cost, out_cost=out_cost))
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    url = f"sqlite:///{tmp_path / 'wilton.db'}" if request.param == "sqlite" else str(
        request.getfixturevalue("pg_url"))
    s = open_store(url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    f = FakeUpstream(models=["local-a", "local-b", "api-x"]).start()
    yield f
    f.stop()


class Gateway:
    """The router's real ASGI app in process (build_app), its lifespan driven by hand."""

    def __init__(self, app: Any, service: Any, ledger: Any, store: SqlStore) -> None:
        self.app, self.service, self.ledger, self.store = app, service, ledger, store
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://router")

    async def chat(self, key: str | None = None, model: str = "auto", content: str = "hello",
                   headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
        h = dict(headers or {})
        if key is not None:
            h["authorization"] = f"Bearer {key}"
        return await self.client.post("/v1/chat/completions", headers=h, json={
            "model": model, "messages": [{"role": "user", "content": content}], **extra})

    async def refresh(self) -> None:
        """What the background refresh does every second, now: ledger written, keys and spend re-read."""
        self.ledger.flush(10)
        await self.app.gate.refresh()

    def rows(self) -> list[dict[str, Any]]:
        self.ledger.flush(10)
        cols = ["request_id", "model_id", "status", "error_class", "http_status", "key_id", "local_only",
                "is_local", "cost_usd"]
        rows = self.store.query(f"SELECT {', '.join(cols)} FROM ledger ORDER BY ts")
        return [dict(zip(cols, r, strict=True)) for r in rows]


@pytest.fixture
async def make_gateway(tmp_path: Path, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
                       ) -> AsyncIterator[Callable[..., Any]]:
    from wilton_core.router.cli import build_app
    from wilton_core.settings import load_settings
    from wilton_core.store.base import ControlState

    monkeypatch.setenv("WILTON_TEST_API_X_KEY", "upstream-secret")
    made: list[Gateway] = []

    async def make(master_key: str | None = MASTER, store_url: str | None = None, **settings: Any) -> Gateway:
        cfg = write_config(tmp_path / "wilton.toml", fake.url)
        url = store_url or f"sqlite:///{tmp_path / 'wilton.db'}"
        s = load_settings(config=cfg, store_url=url, master_key=master_key, **{"ledger_flush_s": 0.05, **settings})
        store = open_store(url)
        store.migrate()
        store.put_control_state(ControlState(phi_target=0.75, threshold=1.0))  # auto stays local first
        app, service, ledger = build_app(s, store=store)
        await service.start()
        await app.gate.start()
        gw = Gateway(app, service, ledger, store)
        made.append(gw)
        return gw

    yield make
    fake.clear()
    for gw in made:
        await gw.client.aclose()
        await gw.service.stop()
        await gw.app.gate.stop()
        gw.store.close()
