"""The daemon's control loop over a real SQLite store filled with synthetic ledger rows."""

import random
import time

from coh_helpers import T0, cheap_hasher

from wilton_core.coherence.service import ADMIN_PASSWORD_FILE, CoherenceOptions, CoherenceService
from wilton_core.store.sqlite import SqliteStore
from wilton_core.types import LedgerRecord


def fill_interval(store, rng, t0: float, t1: float, threshold: float, n: int = 400,
                  local_fail: float = 0.0) -> None:
    """Requests routed by `threshold`, a share of local ones failing over to the API."""
    rows = []
    for i in range(n):
        d = rng.random()
        local = d <= threshold and rng.random() >= local_fail
        rows.append(LedgerRecord(
            ts=t0 + (t1 - t0) * (i + 0.5) / n, request_id=f"r{t0}-{i}", model_id="local" if local else "api",
            tier="selfhost" if local else "edge", is_local=local, provider="openai", difficulty=d,
            tokens_in=100, tokens_out=50, replica=f"rep{i % 3}",
        ))
    store.insert_ledger(rows)


def test_intervals_move_threshold_and_write_history(service, store, clock) -> None:
    rng = random.Random(4)
    interval = service.options.interval_s
    service.step(clock())  # first step: publishes a threshold from (no) data
    thresholds = []
    for _ in range(8):
        t0 = clock()
        clock.advance(interval)
        # 15% of the requests meant for local models fail over: phi sits below target unless
        # the threshold rises to 0.75 / 0.85 ≈ 0.88 (difficulties are uniform).
        fill_interval(store, rng, t0, clock(), service.state().threshold, local_fail=0.15)
        s = service.step()
        thresholds.append(s.threshold)
    # Feedback raises the threshold above the plain 0.75 quantile to keep phi at target.
    assert thresholds[0] < 0.86
    assert abs(sum(thresholds[-3:]) / 3 - 0.75 / 0.85) < 0.04
    assert abs(service.state().measured_phi - 0.75) < 0.06
    hist = store.control_history(0)
    assert len(hist) == 9 and [h.threshold for h in hist[1:]] == thresholds
    assert store.get_control_state().steps == 9


def test_state_survives_restart(service, store, clock, tmp_path) -> None:
    service.set_target(0.6, actor="admin", now=clock())
    before = service.step(clock() + 1)
    service.stop()
    again = CoherenceService(CoherenceOptions(data_dir=tmp_path / "data"), store=store, clock=clock,
                             hasher=cheap_hasher(), announce=lambda s: None)
    again.start(scheduler=False)
    s = again.state()
    assert (s.phi_target, s.threshold, s.steps, s.integral) == (0.6, before.threshold, before.steps, before.integral)
    assert again.auth.password_matches("admin", "correct horse battery staple")
    again.stop()


def test_phi_target_flag_overrides_and_is_audited(store, clock, tmp_path) -> None:
    svc = CoherenceService(CoherenceOptions(phi_target=0.5, password="pw-one", data_dir=tmp_path),
                           store=store, clock=clock, hasher=cheap_hasher(), announce=lambda s: None)
    svc.start(scheduler=False)
    assert svc.state().phi_target == 0.5
    assert [(r["actor"], r["old_value"], r["new_value"]) for r in svc.audit_log()] == [("startup", 0.75, 0.5)]
    svc.stop()


def test_generated_password_printed_once_and_file_0600(store, clock, tmp_path) -> None:
    said: list[str] = []
    opts = CoherenceOptions(data_dir=tmp_path / "d")
    svc = CoherenceService(opts, store=store, clock=clock, hasher=cheap_hasher(), announce=said.append)
    svc.start(scheduler=False)
    path = tmp_path / "d" / ADMIN_PASSWORD_FILE
    pw = path.read_text().strip()
    assert (path.stat().st_mode & 0o777) == 0o600
    assert len(said) == 1 and pw in said[0] and len(pw) >= 20
    assert svc.auth.password_matches("admin", pw)
    stored = store.query_one("SELECT password_hash FROM coherence_users WHERE username = ?", ("admin",))
    assert pw not in stored[0] and stored[0].startswith("$argon2")
    svc.stop()
    svc2 = CoherenceService(opts, store=store, clock=clock, hasher=cheap_hasher(), announce=said.append)
    svc2.start(scheduler=False)
    assert len(said) == 1  # not generated (nor printed) again
    svc2.stop()


def test_scheduler_steps_on_its_own(tmp_path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    svc = CoherenceService(CoherenceOptions(interval_s=0.05, password="pw", data_dir=tmp_path),
                           store=store, hasher=cheap_hasher(), announce=lambda s: None)
    svc.start()
    try:
        deadline = time.monotonic() + 5
        while svc.state().steps < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert svc.state().steps >= 3
        svc.stop()
        assert len(store.control_history(0)) == svc.state().steps
    finally:
        svc.stop()
        store.close()


def test_step_window_since_last_step(service, store, clock) -> None:
    rng = random.Random(9)
    service.step(clock())
    clock.advance(4)
    fill_interval(store, rng, clock() - 4, clock(), 1.0, n=100)  # all local
    s = service.step()
    assert s.extra["window_samples"] == 100 and s.measured_phi == 1.0
    assert T0 < s.updated_at == clock()



def test_set_target_is_one_transaction(service, store, clock) -> None:
    """The audit row, the published state and its history row change together or not at all:
    a failure half-way must not leave routers on a target the audit log does not show (or the reverse)."""
    import pytest

    from wilton_core.errors import StoreError

    before, audited = store.get_control_state(), service.audit_log()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise StoreError("disk full")

    store.append_control_history = disk_full  # the last write of the change fails
    with pytest.raises(StoreError):
        service.set_target(0.5, actor="admin", now=clock())
    del store.append_control_history
    assert store.get_control_state() == before and service.audit_log() == audited
    assert service.state().phi_target == before.phi_target
    after = service.set_target(0.5, actor="admin", now=clock())
    assert after.phi_target == 0.5 and store.get_control_state() == after
    assert [r["new_value"] for r in service.audit_log()][-1] == 0.5
