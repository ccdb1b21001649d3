"""StatusTable over the real store, both dialects (migration 0040 applied by the store's runner)."""


import pytest

from wilton_core.registry.registry import ModelRegistry, ProbeResult, StatusTable
from wilton_core.store.sqlite import SqliteStore

from .conftest import model


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = SqliteStore(tmp_path / "w.db")
    else:
        from wilton_core.store.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("pg_url"))
    s.migrate()
    yield s
    s.close()


def test_save_load_roundtrip_and_failure_count(store):
    t = StatusTable(store)
    assert t.load() == {}
    t.save(ProbeResult("a", "available", 12.5, 1000.0, None))
    s1 = t.save(ProbeResult("b", "failed", None, 1000.0, "unavailable: down", 1))
    s2 = t.save(ProbeResult("b", "failed", None, 1060.0, "unavailable: down", 1))
    s3 = t.save(ProbeResult("b", "rate_limited", None, 1120.0, "rate_limited: slow down", 1))
    assert (s1.failures, s2.failures, s3.failures) == (1, 2, 3)
    loaded = t.load()
    assert loaded["a"] == ProbeResult("a", "available", 12.5, 1000.0, None, 0)
    assert loaded["b"] == ProbeResult("b", "rate_limited", None, 1120.0, "rate_limited: slow down", 3)
    t.save(ProbeResult("b", "available", 30.0, 1200.0))
    assert t.load()["b"].failures == 0


def test_migration_is_idempotent(store):
    store.migrate()
    assert any(v == 40 for v, _ in store.applied_migrations())


async def test_registry_results_visible_to_a_second_registry(store, upstream):
    import httpx

    upstream.set("down", 503, {"error": {"message": "no"}})
    models = [model("up"), model("down")]
    r1 = ModelRegistry(models, store=store, transport=httpx.MockTransport(upstream), environ={},
                       clock=lambda: 5000.0)
    await r1.test()
    r2 = ModelRegistry(models, store=store, environ={})
    st = r2.status_map()
    assert st["up"].status == "available" and st["up"].tested_at == 5000.0
    assert st["down"].status == "failed" and st["down"].failures == 1
    assert r2.due(5000.0 + 61) == ["down"]
