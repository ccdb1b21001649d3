"""One fake upstream for the whole provider suite; each test gets it cleared."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from wilton_core.config import ModelConfig
from wilton_core.providers.base import Provider
from wilton_core.providers.factory import make_provider
from wilton_core.testing.fake_upstream import FakeUpstream

KEY = "sk-test-not-a-real-key-0123456789"
ENV = {"FAKE_API_KEY": KEY}


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeUpstream]:
    fake = FakeUpstream(api_key=KEY, models=("listed-a", "listed-b")).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_server: FakeUpstream) -> FakeUpstream:
    fake_server.clear()
    return fake_server


def model_config(provider: str, url: str, upstream: str = "m1", **kw: Any) -> ModelConfig:
    base = url + "/v1" if provider == "openai" else url
    fields: dict[str, Any] = dict(id=f"{provider}-{upstream}", provider=provider, model=upstream, base_url=base,
                                  tier="edge", is_local=False, api_key_env="FAKE_API_KEY", timeout_s=5.0)
    fields.update(kw)
    return ModelConfig(**fields)


@pytest.fixture
async def make(fake: FakeUpstream) -> AsyncIterator[Callable[..., Provider]]:
    """make("openai", "m1", timeout_s=0.5) -> a provider pointed at the fake; closed after the test."""
    made: list[Provider] = []

    def _make(provider: str, upstream: str = "m1", environ: dict[str, str] | None = None, **kw: Any) -> Provider:
        p = make_provider(model_config(provider, fake.url, upstream, **kw), environ=ENV if environ is None else environ)
        made.append(p)
        return p

    yield _make
    for p in made:
        await p.aclose()
