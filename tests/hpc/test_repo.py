from __future__ import annotations

from wilton_core.hpc.model import TaskResult
from wilton_core.hpc.repo import TaskRepo
from wilton_core.store import open_store

NOW = 1_700_000_000.0


def test_batch_persisted_before_it_runs_and_survives_reopen(tmp_path, make_spec):
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store = open_store(url)
    bid = TaskRepo(store).create_batch(make_spec(3, priorities=[0, 5, 1]), now=NOW, concurrency=2, source="f.json")
    store.close()
    # a new process: everything is there, pending, highest priority first
    store = open_store(url)
    repo = TaskRepo(store)
    info = repo.batch(bid)
    assert info is not None and info.status == "pending" and info.counts == {"pending": 3}
    assert (info.name, info.source, info.concurrency) == ("t", "f.json", 2)
    assert [(t.idx, t.priority) for t in repo.pending(bid)] == [(1, 5), (2, 1), (0, 0)]
    assert repo.pending(bid)[0].request == {"model": "auto", "messages": [{"role": "user", "content": "task 1"}],
                                            "max_tokens": 8}
    store.close()


def test_lease_blocks_a_second_runner_until_it_expires(repo, make_spec):
    bid = repo.create_batch(make_spec(2), now=NOW, concurrency=1)
    assert repo.acquire(bid, "a", now=NOW, ttl_s=30)
    assert repo.start_task(bid, 0, now=NOW)
    assert not repo.acquire(bid, "b", now=NOW + 10, ttl_s=30)
    assert repo.renew(bid, "a", now=NOW + 20, ttl_s=30)          # lease now ends at NOW + 50
    assert not repo.acquire(bid, "b", now=NOW + 45, ttl_s=30)
    assert repo.batch(bid).counts == {"running": 1, "pending": 1}
    # runner a died: its task goes back to pending when b takes over
    assert repo.acquire(bid, "b", now=NOW + 51, ttl_s=30)
    assert repo.batch(bid).counts == {"pending": 2}
    assert not repo.renew(bid, "a", now=NOW + 52, ttl_s=30)


def test_start_task_is_exclusive_and_release_marks_done(repo, make_spec):
    bid = repo.create_batch(make_spec(2), now=NOW, concurrency=1)
    assert repo.acquire(bid, "a", now=NOW, ttl_s=30)
    assert repo.start_task(bid, 0, now=NOW) and not repo.start_task(bid, 0, now=NOW)
    repo.finish_task(bid, 0, TaskResult(status="ok", text="olá", model_id="m", tier="selfhost", is_local=True,
                                        latency_s=0.5, tokens_in=3, tokens_out=4, cost_usd=0.0, fallbacks=0),
                     now=NOW + 1)
    assert repo.release(bid, "a", now=NOW + 2) == "pending"     # task 1 never ran
    assert repo.acquire(bid, "a", now=NOW + 3, ttl_s=30)
    repo.start_task(bid, 1, now=NOW + 3)
    repo.finish_task(bid, 1, TaskResult(status="error", http_status=503, error="HTTP 503: none"), now=NOW + 4)
    assert repo.release(bid, "a", now=NOW + 5) == "done"
    info = repo.batch(bid)
    assert info.status == "done" and info.finished_at == NOW + 5 and info.counts == {"ok": 1, "error": 1}
    assert not repo.acquire(bid, "z", now=NOW + 100, ttl_s=30)   # done batches are not re-run
    t0, t1 = repo.tasks(bid)
    assert t0.result.text == "olá" and t0.result.is_local is True and t0.attempts == 1
    assert t0.started_at == NOW and t0.finished_at == NOW + 1
    assert t1.result.status == "error" and t1.result.http_status == 503 and t1.result.is_local is None


def test_batches_listing_and_unfinished_filter(repo, make_spec):
    a = repo.create_batch(make_spec(1), now=NOW, concurrency=1)
    b = repo.create_batch(make_spec(1), now=NOW + 1, concurrency=1)
    repo.acquire(a, "x", now=NOW, ttl_s=1)
    repo.start_task(a, 0, now=NOW)
    repo.finish_task(a, 0, TaskResult(status="ok"), now=NOW)
    repo.release(a, "x", now=NOW)
    assert [i.id for i in repo.batches()] == [b, a]
    assert [i.id for i in repo.batches(unfinished_only=True)] == [b]
    assert repo.batch("nope") is None


def test_cancel_keeps_answers_and_ends_the_batch_delete_removes_it(repo, make_spec):
    bid = repo.create_batch(make_spec(3), now=NOW, concurrency=1)
    other = repo.create_batch(make_spec(1), now=NOW, concurrency=1)
    assert repo.acquire(bid, "a", now=NOW, ttl_s=30)
    repo.start_task(bid, 0, now=NOW)
    repo.finish_task(bid, 0, TaskResult(status="ok", text="kept", model_id="m", tier="selfhost", is_local=True),
                     now=NOW + 1)
    repo.start_task(bid, 1, now=NOW + 1)                       # running when its runner died
    assert repo.cancel(bid, now=NOW + 100, reason="router gone") == 2
    info = repo.batch(bid)
    assert info.status == "done" and info.lease_owner is None and info.counts == {"ok": 1, "error": 2}
    assert [t.result.error for t in repo.tasks(bid)] == [None, "cancelled: router gone", "cancelled: router gone"]
    assert repo.tasks(bid)[0].result.text == "kept"
    assert bid not in [b.id for b in repo.batches(unfinished_only=True)]   # no resume sweep picks it up
    assert not repo.acquire(bid, "b", now=NOW + 200, ttl_s=30)
    assert repo.delete(bid) == 3
    assert repo.batch(bid) is None and repo.tasks(bid) == []
    assert repo.batch(other).counts == {"pending": 1}          # nothing else touched
