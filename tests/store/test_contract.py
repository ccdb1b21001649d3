"""The store contract, run against every backend (SQLite and PostgreSQL) by the `store_url` fixture."""

from __future__ import annotations

import math
import random
import shutil
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from wilton_core.errors import StoreError
from wilton_core.store import LATENCY_BUCKETS, ControlState, SqlStore, open_store
from wilton_core.store.ledger_writer import LedgerWriter
from wilton_core.store.migrate import MIGRATIONS_DIR
from wilton_core.types import LedgerRecord

from ._records import brute_agg, brute_fallbacks, brute_hist, brute_window, generate

MakeStore = Callable[..., SqlStore]


# ---------------------------------------------------------------- migrations


def test_migrate_is_idempotent(store: SqlStore) -> None:
    first = store.applied_migrations()
    store.migrate()
    store.migrate()
    assert store.applied_migrations() == first
    versions = [v for v, _ in first]
    assert versions[:4] == [1, 2, 3, 4]
    assert versions == sorted(set(versions))


def test_migrate_applies_only_new_files(store_url: str, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mdir)
    s = open_store(store_url, migrations_dir=mdir)
    try:
        before = s.applied_migrations()
        (mdir / "0099_extra.sql").write_text(
            "-- a test table; with a ';' in a comment\n"
            "CREATE TABLE IF NOT EXISTS extra_t (k TEXT PRIMARY KEY, note TEXT NOT NULL DEFAULT 'a;b');\n"
            "INSERT INTO extra_t (k) VALUES ('x');\n"
        )
        s.migrate()
        after = s.applied_migrations()
        assert after == [*before, (99, "extra")]
        assert s.query("SELECT k, note FROM extra_t") == [("x", "a;b")]
        s.migrate()  # the INSERT above would fail on the primary key if it ran twice
        assert s.query("SELECT COUNT(*) FROM extra_t") == [(1,)]
    finally:
        s.close()


def test_failed_migration_rolls_back_and_names_the_file(store_url: str, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, mdir)
    (mdir / "0098_good.sql").write_text("CREATE TABLE good_t (a INTEGER);\n")
    (mdir / "0099_bad.sql").write_text("CREATE TABLE bad_t (a INTEGER);\nTHIS IS NOT SQL;\n")
    with pytest.raises(StoreError, match=r"0099_bad\.sql"):
        open_store(store_url, migrations_dir=mdir)
    (mdir / "0099_bad.sql").unlink()
    s = open_store(store_url, migrations_dir=mdir)
    try:
        versions = [v for v, _ in s.applied_migrations()]
        assert 98 in versions and 99 not in versions
        # all-or-nothing: bad_t from the failed run does not exist
        with pytest.raises(StoreError):
            s.query("SELECT * FROM bad_t")
    finally:
        s.close()


def test_concurrent_migrate_on_a_fresh_store(store_url: str) -> None:
    n = 4
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []
    stores: list[SqlStore] = []

    def run() -> None:
        try:
            s = open_store(store_url, migrate=False)
            stores.append(s)
            barrier.wait(5)
            s.migrate()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == []
        versions = [v for (v,) in stores[0].query("SELECT version FROM schema_migrations")]
        assert sorted(versions) == sorted(set(versions))
        assert {1, 2, 3, 4} <= set(versions)
    finally:
        for s in stores:
            s.close()


# ---------------------------------------------------------------- ledger + aggregates


def _insert_in_batches(store: SqlStore, records: Sequence[LedgerRecord], seed: int) -> None:
    rng = random.Random(seed)
    i = 0
    while i < len(records):
        n = rng.randint(1, 120)
        store.insert_ledger(records[i:i + n])
        i += n


def test_ledger_and_aggregates_match_brute_force(store: SqlStore) -> None:
    gen = generate(700, seed=1)
    _insert_in_batches(store, gen.records, seed=2)
    store.insert_ledger([])
    assert store.count_ledger() == 700

    agg = store.aggregates()
    expected = brute_agg(gen.records)
    got = {(a.tier, a.model_id, a.provider, a.intent, a.status, a.error_class): a for a in agg.ledger}
    assert set(got) == set(expected)
    for key, e in expected.items():
        a = got[key]
        assert (a.requests, a.tokens_in, a.tokens_out, a.ttft_count, a.fallbacks) == (e[0], e[1], e[2], e[6], e[7])
        assert a.cost_usd == pytest.approx(e[3])
        assert a.latency_sum_s == pytest.approx(e[4])
        assert a.ttft_sum_s == pytest.approx(e[5])

    hist = brute_hist(gen.records)
    got_h = {(h.tier, h.model_id, h.kind): h for h in agg.histograms}
    assert set(got_h) == set(hist)
    for key, counts in hist.items():
        h = got_h[key]
        assert [le for le, _ in h.buckets] == list(LATENCY_BUCKETS)
        assert [c for _, c in h.buckets] == counts
        assert h.count == counts[-1]
        field = "latency_s" if key[2] == "latency" else "ttft_s"
        values = [getattr(r, field) for r in gen.records if (r.tier, r.model_id) == key[:2]]
        assert h.sum == pytest.approx(sum(v for v in values if v is not None))

    expected_fb = brute_fallbacks(gen)
    assert {(f.model_id, f.reason): f.count for f in agg.fallbacks} == dict(expected_fb)
    assert agg.rate_limit_hits() == {
        m: c for (m, reason), c in expected_fb.items() if reason == "rate_limited"
    }


def test_ledger_rows_round_trip_every_field(store: SqlStore) -> None:
    gen = generate(50, seed=3)
    store.insert_ledger(gen.records)
    rows = store.ledger_rows(0, math.inf)
    by_id = sorted(gen.records, key=lambda r: r.ts)
    assert rows["request_id"] == [r.request_id for r in by_id]
    for name in ("ts", "model_id", "tier", "is_local", "provider", "intent", "difficulty", "latency_s",
                 "ttft_s", "tokens_in", "tokens_out", "cost_usd", "status", "error_class", "fallbacks",
                 "tried", "stream", "replica", "attempt_errors"):
        assert rows[name] == [getattr(r, name) for r in by_id], name
    assert len(set(rows["id"])) == 50

    part = store.ledger_rows(by_id[10].ts, by_id[20].ts, ["difficulty", "is_local"])
    assert list(part) == ["difficulty", "is_local"]
    assert part["difficulty"] == [r.difficulty for r in by_id[10:20]]
    with pytest.raises(StoreError, match="unknown ledger column"):
        store.ledger_rows(0, 1, ["ts; DROP TABLE ledger"])


def test_phi_window_matches_brute_force(store: SqlStore) -> None:
    gen = generate(900, seed=4, span_s=40.0)
    _insert_in_batches(store, gen.records, seed=5)
    t0 = 1_700_000_000.0
    rng = random.Random(6)
    windows = [(t0 - 5, t0 + 100), (t0, t0 + 40), (t0 + 3, t0 + 3), (t0 + 7.2, t0 + 7.9),
               (t0 + 7.2, t0 + 8.0), (t0 + 8, t0 + 9), (t0 + 50, t0 + 60), (t0 + 9, t0 + 8)]
    windows += [(t0 + a, t0 + a + rng.random() * 20) for a in (rng.uniform(-2, 40) for _ in range(40))]
    windows += [(r.ts, r.ts + k) for r, k in zip(rng.sample(gen.records, 10), (0.5, 1, 2, 3, 5) * 2, strict=True)]
    for since, until in windows:
        w = store.phi_window(since, until)
        got = (w.requests, w.local_requests, w.tokens, w.local_tokens, w.errors)
        assert got == brute_window(gen.records, since, until), (since - t0, until - t0)
    whole = store.phi_window(t0 - 1, t0 + 100)
    served = [r for r in gen.records if r.status != "error"]
    assert whole.phi() == pytest.approx(sum(r.is_local for r in served) / len(served))


def test_recent_difficulties(store: SqlStore) -> None:
    gen = generate(200, seed=7)
    store.insert_ledger(gen.records)
    since = sorted(r.ts for r in gen.records)[100]
    # newest first; among equal timestamps the later insert first
    newest_first = [r for _, _, r in sorted(
        ((r.ts, i, r) for i, r in enumerate(gen.records) if r.ts >= since and r.difficulty is not None),
        key=lambda t: (t[0], t[1]), reverse=True,
    )]
    assert store.recent_difficulties(since) == [r.difficulty for r in newest_first]
    assert store.recent_difficulties(since, limit=5) == [r.difficulty for r in newest_first[:5]]


def test_insert_is_one_transaction(store: SqlStore) -> None:
    gen = generate(10, seed=8)
    store.insert_ledger(gen.records[:5])
    before = store.aggregates()
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_ledger(gen.records[5:])
        raise RuntimeError("abort after the insert")
    assert store.count_ledger() == 5
    assert store.aggregates() == before


def test_concurrent_writers_same_keys(make_store: MakeStore) -> None:
    """Threads with their own stores hammer the same aggregate keys: no deadlock, nothing lost."""
    stores = [make_store() for _ in range(3)]
    gens = [generate(300, seed=100 + i) for i in range(3)]
    errors: list[BaseException] = []

    def run(s: SqlStore, recs: list[LedgerRecord]) -> None:
        try:
            for i in range(0, len(recs), 25):
                s.insert_ledger(recs[i:i + 25])
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(s, g.records)) for s, g in zip(stores, gens, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert stores[0].count_ledger() == 900
    all_records = [r for g in gens for r in g.records]
    assert sum(a.requests for a in stores[0].aggregates().ledger) == 900
    assert stores[0].phi_window(0, 2e9).local_requests == sum(
        r.is_local for r in all_records if r.status != "error")


# ---------------------------------------------------------------- control state, kv


def test_control_state_round_trip(store: SqlStore) -> None:
    assert store.get_control_state() is None
    state = ControlState(phi_target=0.8, threshold=0.61, bias=-0.02, measured_phi=None, error=None,
                         integral=0.3, updated_at=1234.5, steps=7, extra={"mode": "pi", "gains": [0.1, 0.2]})
    store.put_control_state(state)
    assert store.get_control_state() == state
    state2 = ControlState(phi_target=0.7, threshold=0.4, measured_phi=0.72, error=-0.02, steps=8,
                          tie_api_share=0.375)  # the field routers read is typed, and round-trips
    store.put_control_state(state2)
    assert store.get_control_state() == state2
    assert store.query("SELECT COUNT(*) FROM control_state") == [(1,)]
    with pytest.raises(StoreError, match="JSON"):
        store.put_control_state(ControlState(extra={"x": object()}))


def test_control_history(store: SqlStore) -> None:
    for i in range(10):
        store.append_control_history(100.0 + i, 0.75, None if i == 0 else 0.7 + i / 100, 0.5 - i / 100,
                                     None if i == 0 else 0.05 - i / 100)
    rows = store.control_history(103.0)
    assert [r.ts for r in rows] == [103.0 + i for i in range(7)]
    assert rows[0].measured_phi == pytest.approx(0.73) and rows[0].threshold == pytest.approx(0.47)
    assert store.control_history(0)[0].measured_phi is None
    assert [r.ts for r in store.control_history(103.0, until=105.0)] == [103.0, 104.0]


def test_kv(store: SqlStore) -> None:
    assert store.kv_get("missing") is None
    store.kv_set("router_health:r1", '{"ok": true}')
    store.kv_set("router_health:r2", "x")
    store.kv_set("router_healthXr3", "not under the prefix")
    store.kv_set("100%_done", "literal % and _ in keys")
    store.kv_set("router_health:r2", "y")
    assert store.kv_get("router_health:r2") == "y"
    assert store.kv_items("router_health:") == {"router_health:r1": '{"ok": true}', "router_health:r2": "y"}
    assert store.kv_items("100%_") == {"100%_done": "literal % and _ in keys"}
    assert store.kv_delete("router_health:r1") is True
    assert store.kv_delete("router_health:r1") is False


# ---------------------------------------------------------------- thin SQL API


def test_sql_api_and_transactions(store: SqlStore) -> None:
    store.execute("CREATE TABLE IF NOT EXISTS api_t (k TEXT PRIMARY KEY, n BIGINT NOT NULL, note TEXT)")
    store.executemany("INSERT INTO api_t (k, n, note) VALUES (?, ?, ?)",
                      [("a", 1, "50% off"), ("b", 2, "what?"), ("c", 3, None)])
    assert store.query("SELECT k, n, note FROM api_t WHERE n >= ? ORDER BY k", (2,)) == [("b", 2, "what?"), ("c", 3, None)]
    assert store.query_one("SELECT note FROM api_t WHERE note LIKE '%\\%%' ESCAPE '\\'") == ("50% off",)
    assert store.query_one("SELECT k FROM api_t WHERE k = ?", ("zz",)) is None
    assert store.execute("UPDATE api_t SET n = n + 1 WHERE n < ?", (3,)) == 2

    with store.transaction():
        store.execute("INSERT INTO api_t (k, n) VALUES (?, ?)", ("d", 4))
        with store.transaction():  # nested: joins the outer one
            store.execute("INSERT INTO api_t (k, n) VALUES (?, ?)", ("e", 5))
    with pytest.raises(StoreError), store.transaction():
        store.execute("INSERT INTO api_t (k, n) VALUES (?, ?)", ("f", 6))
        store.execute("INSERT INTO api_t (k, n) VALUES (?, ?)", ("a", 0))  # duplicate key
    assert [k for (k,) in store.query("SELECT k FROM api_t ORDER BY k")] == ["a", "b", "c", "d", "e"]
    assert store.dialect in ("sqlite", "postgres")
    with pytest.raises(StoreError, match=store.dialect):
        store.query("SELECT * FROM no_such_table")


def test_store_usable_from_many_threads(store: SqlStore) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for j in range(10):
                store.kv_set(f"t{i}:{j}", str(j))
                assert store.kv_get(f"t{i}:{j}") == str(j)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(store.kv_items("t")) == 60


def test_closed_store_refuses(make_store: MakeStore) -> None:
    s = make_store()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.kv_get("x")


# ---------------------------------------------------------------- ledger writer over a real store


class FlakyStore:
    """A real store whose insert fails, INSIDE its transaction, while `failing` is set."""

    def __init__(self, real: SqlStore) -> None:
        self.real = real
        self.failing = True
        self.failures = 0

    def insert_ledger(self, records: Sequence[LedgerRecord]) -> None:
        if not self.failing:
            self.real.insert_ledger(records)
            return
        with self.real.transaction():
            self.real.insert_ledger(records)
            self.failures += 1
            raise StoreError("injected failure after the insert (must roll back)")

    def ping(self) -> None:
        if self.failing:
            raise StoreError("injected: store unreachable")


def test_ledger_writer_loses_nothing_when_the_store_recovers(store: SqlStore) -> None:
    flaky = FlakyStore(store)
    writer = LedgerWriter(flaky, flush_interval_s=0.01, batch_size=50, retry_base_s=0.005, retry_max_s=0.02)
    writer.start()
    gen = generate(1000, seed=9)
    for r in gen.records[:600]:
        writer.submit(r)
    deadline = threading.Event()
    while flaky.failures < 5 and not deadline.wait(0.01):
        pass
    assert store.count_ledger() == 0
    assert writer.stats().last_error is not None and writer.stats().queued == 600
    flaky.failing = False
    for r in gen.records[600:]:
        writer.submit(r)
    assert writer.stop(timeout=20) == 0
    stats = writer.stats()
    assert (stats.written, stats.dropped, stats.rejected, stats.queued) == (1000, 0, 0, 0)
    assert stats.last_error is None
    assert store.count_ledger() == 1000
    ids = store.ledger_rows(0, math.inf, ["request_id"])["request_id"]
    assert sorted(ids) == sorted(r.request_id for r in gen.records)
    assert sum(a.requests for a in store.aggregates().ledger) == 1000
