"""SQLite-specific: several OS processes migrating and writing one file at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from wilton_core.store import open_store

WORKER = r"""
import sys, time
from wilton_core.store import open_store
from wilton_core.types import LedgerRecord

url, worker, batches, size, start_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
store = open_store(url, migrate=False)
while time.time() < start_at:
    time.sleep(0.002)
store.migrate()   # every process migrates the fresh file at the same moment
for b in range(batches):
    recs = [
        LedgerRecord(ts=1000.0 + b + i / size, request_id=f"w{worker}-{b}-{i}", model_id=f"m{i % 3}",
                     tier="selfhost" if i % 4 else "frontier", is_local=bool(i % 4), provider="ollama",
                     latency_s=0.01 * i, tokens_in=i, tokens_out=1)
        for i in range(size)
    ]
    store.insert_ledger(recs)
    store.kv_set(f"progress:{worker}", str(b))
    store.phi_window(1000.0, 1000.0 + b + 0.5)
store.close()
print("done", worker)
"""


def test_several_processes_write_at_once_without_errors_or_loss(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    procs, batches, size = 4, 30, 20
    start_at = time.time() + 1.5  # after every interpreter has started
    children = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(w), str(batches), str(size), str(start_at)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for w in range(procs)
    ]
    results = [c.communicate(timeout=90) for c in children]
    for c, (out, err) in zip(children, results, strict=True):
        assert c.returncode == 0, err
        assert "locked" not in err and out.strip().startswith("done")

    store = open_store(url)
    try:
        total = procs * batches * size
        assert store.count_ledger() == total
        ids = store.ledger_rows(0, 1e12, ["request_id"])["request_id"]
        assert len(set(ids)) == total
        assert sum(a.requests for a in store.aggregates().ledger) == total
        w = store.phi_window(0, 1e12)
        assert (w.requests, w.local_requests) == (total, procs * batches * 15)
        assert store.kv_items("progress:") == {f"progress:{i}": str(batches - 1) for i in range(procs)}
        versions = [v for (v,) in store.query("SELECT version FROM schema_migrations")]
        assert len(versions) == len(set(versions))
    finally:
        store.close()
