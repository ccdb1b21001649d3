#!/usr/bin/env python3
"""Ledger insert throughput of the shared store, SQLite and PostgreSQL.

For each backend, on a fresh store: `insert_ledger` in batches (the ledger row plus every
running aggregate, in one transaction per batch), then the `LedgerWriter` end to end (submit
every record, then `stop()` which flushes), and the cost of one `submit()` call.

    python bench/store_insert.py                    # 20k rows per backend (a few seconds)
    python bench/store_insert.py --1m               # 1M rows (minutes)
    python bench/store_insert.py --rows 200000 --batch 1000 --backends sqlite

PostgreSQL gets a throwaway database (`wilton_bench_<random>`) created through --pg-admin-url
and dropped at the end; when no server answers, its row says so and the bench goes on.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wilton_core.errors import StoreError
from wilton_core.store import SqlStore, open_store
from wilton_core.store.ledger_writer import LedgerWriter
from wilton_core.types import LedgerRecord

MODELS = [
    ("llama3:8b", "selfhost", True, "ollama"),
    ("qwen2.5:7b", "selfhost", True, "ollama"),
    ("local-small", "selfhost", True, "openai"),
    ("groq-llama-8b", "edge", False, "openai"),
    ("gpt-4o", "frontier", False, "openai"),
]
INTENTS = ["chat", "code", "summarize", None]
WRITER_ROWS_MAX = 200_000  # the writer bench holds its records in memory


@dataclass
class Result:
    backend: str
    rows: int
    insert_rows_s: float | None = None
    writer_rows_s: float | None = None
    submit_us: float | None = None
    note: str = ""


def records(n: int, *, start: int = 0, t0: float = 1_700_000_000.0) -> Iterator[LedgerRecord]:
    """A production-like mix: 3 in 5 local, some errors and fallbacks, 40 requests a second."""
    for i in range(start, start + n):
        model, tier, local, provider = MODELS[i % len(MODELS)]
        failed = i % 50 == 0
        fell_back = i % 20 == 0
        yield LedgerRecord(
            ts=t0 + i * 0.025, request_id=f"bench-{i}", model_id=model, tier=tier, is_local=local,
            provider=provider, intent=INTENTS[i % len(INTENTS)], difficulty=(i * 7919 % 1000) / 1000,
            latency_s=0.05 + (i % 300) / 100, ttft_s=0.02 + (i % 50) / 100 if i % 2 else None,
            tokens_in=100 + i % 900, tokens_out=20 + i % 400, cost_usd=0.0 if local else 0.0004,
            status="error" if failed else "ok", error_class="unavailable" if failed else None,
            fallbacks=1 if fell_back else 0, tried="gpt-4o" if fell_back else "",
            attempt_errors="gpt-4o:rate_limited" if fell_back else "", stream=bool(i % 3), replica="bench",
        )


def bench_insert(store: SqlStore, rows: int, batch: int) -> float:
    elapsed = 0.0
    done = 0
    while done < rows:
        n = min(batch, rows - done)
        chunk = list(records(n, start=done))
        t = time.perf_counter()
        store.insert_ledger(chunk)
        elapsed += time.perf_counter() - t
        done += n
    assert store.count_ledger() == rows, "rows lost"
    return rows / elapsed


def bench_writer(store: SqlStore, rows: int, batch: int) -> tuple[float, float]:
    recs = list(records(rows, start=10_000_000))
    writer = LedgerWriter(store, batch_size=batch, max_queue=rows + 1)
    before = store.count_ledger()
    writer.start()
    t = time.perf_counter()
    for r in recs:
        writer.submit(r)
    submit_s = time.perf_counter() - t
    lost = writer.stop(timeout=600)
    total_s = time.perf_counter() - t
    if lost or store.count_ledger() - before != rows:
        raise SystemExit(f"writer lost rows: {lost} unwritten, {writer.stats()}")
    return rows / total_s, submit_s / rows * 1e6


def run_backend(name: str, url: str, rows: int, batch: int) -> Result:
    res = Result(name, rows)
    store = open_store(url)
    try:
        res.insert_rows_s = bench_insert(store, rows, batch)
        wrows = min(rows, WRITER_ROWS_MAX)
        res.writer_rows_s, res.submit_us = bench_writer(store, wrows, batch)
        if wrows < rows:
            res.note = f"writer on {wrows:,} rows"
    finally:
        store.close()
    return res


def pg_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"wilton_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = admin_url.rsplit("/", 1)[0]
    return name, f"{base}/{name}"


def drop_pg_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=20_000)
    p.add_argument("--1m", dest="one_million", action="store_true", help="1,000,000 rows per backend")
    p.add_argument("--batch", type=int, default=500, help="records per insert_ledger call (LedgerWriter default)")
    p.add_argument("--backends", default="sqlite,postgres")
    p.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args(argv)
    rows = 1_000_000 if args.one_million else args.rows

    results: list[Result] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as d:
                results.append(run_backend("sqlite", f"sqlite:///{Path(d) / 'bench.db'}", rows, args.batch))
        elif backend == "postgres":
            try:
                name, url = pg_database(args.pg_admin_url)
            except Exception as err:
                results.append(Result("postgres", rows, note=f"skipped: {' '.join(str(err).split())[:60]}"))
                continue
            try:
                results.append(run_backend("postgres", url, rows, args.batch))
            except StoreError as err:
                results.append(Result("postgres", rows, note=f"failed: {err}"))
            finally:
                drop_pg_database(args.pg_admin_url, name)
        else:
            p.error(f"unknown backend {backend!r}")

    def fmt(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    print(f"ledger insert throughput, batch={args.batch}")
    print(f"{'backend':<10} {'rows':>10} {'insert_ledger rows/s':>21} {'LedgerWriter rows/s':>20} {'submit() us':>12}  note")
    for r in results:
        print(f"{r.backend:<10} {r.rows:>10,} {fmt(r.insert_rows_s, ',.0f'):>21} "
              f"{fmt(r.writer_rows_s, ',.0f'):>20} {fmt(r.submit_us, '.2f'):>12}  {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
