from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from coh_helpers import PASSWORD, FakeClock, cheap_hasher

from wilton_core.coherence.app import create_app
from wilton_core.coherence.service import CoherenceOptions, CoherenceService
from wilton_core.store.sqlite import SqliteStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "wilton.db")
    yield s
    s.close()


@pytest.fixture
def service(store: SqliteStore, clock: FakeClock, tmp_path: Path) -> Iterator[CoherenceService]:
    svc = CoherenceService(
        CoherenceOptions(password=PASSWORD, data_dir=tmp_path / "data"),
        store=store, clock=clock, hasher=cheap_hasher(), announce=lambda s: None,
    )
    svc.start(scheduler=False)
    yield svc
    svc.stop()


@pytest.fixture
async def api(service: CoherenceService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(service), client=("10.0.0.7", 5555))
    async with httpx.AsyncClient(transport=transport, base_url="http://coherence") as c:
        yield c
