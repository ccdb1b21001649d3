"""A coherence service over a fresh SQLite store, with a cheap password hasher (same code path)."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher

from wilton_core.coherence.service import CoherenceOptions, CoherenceService
from wilton_core.store.sqlite import SqliteStore

PASSWORD = "reliability horse battery staple"


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def make_service(tmp: Path, clock=None) -> tuple[CoherenceService, SqliteStore]:
    store = SqliteStore(tmp / "wilton.db")
    kw = {} if clock is None else {"clock": clock}
    svc = CoherenceService(CoherenceOptions(password=PASSWORD, data_dir=tmp / "data"), store=store,
                           hasher=cheap_hasher(), announce=lambda s: None, **kw)
    svc.start(scheduler=False)
    return svc, store


def snapshot(svc: CoherenceService) -> dict:
    """Everything an attack must not change: the target, the audit log, users, refresh-token rows."""
    st = svc.store.get_control_state()
    return {
        "target": st.phi_target if st else None,
        "threshold": st.threshold if st else None,
        "audit": svc.audit_log(),
        "users": svc.store.query("SELECT username, password_hash, scopes FROM coherence_users ORDER BY username"),
        "refresh": svc.store.query("SELECT jti, used_at, revoked FROM coherence_refresh_tokens ORDER BY jti"),
        "keys": svc.store.query("SELECT kid, retired_at FROM coherence_signing_keys ORDER BY kid"),
    }
