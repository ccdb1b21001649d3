"""The coherence daemon's service object: the control loop and the target, over the shared store.

`CoherenceService(...)` holds no resources until `start()`: that opens the store (unless one was
passed in), migrates it, reads the published control state back (so a restart continues where
the last run stopped), makes sure an admin user and a signing key exist, and starts the
APScheduler job that steps the controller every `interval_s`. `stop()` undoes it.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wilton_core.coherence.auth import ALL_SCOPES, AuthConfig, AuthService
from wilton_core.core.control_state import ControlState
from wilton_core.core.controller import Controller, ControllerConfig
from wilton_core.errors import WiltonError

if TYPE_CHECKING:
    from argon2 import PasswordHasher

    from wilton_core.coherence.refit import RefitOutcome
    from wilton_core.store.base import Store

__all__ = ["ADMIN_PASSWORD_FILE", "CoherenceOptions", "CoherenceService", "validate_target"]

log = logging.getLogger("wilton.coherence")
ADMIN_PASSWORD_FILE = "coherence-admin-password"


def validate_target(x: Any) -> float:
    """A phi target: a finite number in [0, 1] (bools are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x) or not 0.0 <= x <= 1.0:
        raise ValueError("phi_target must be a finite number in [0, 1]")
    return float(x)


@dataclass(slots=True, frozen=True)
class CoherenceOptions:
    interval_s: float = 10.0
    phi_target: float | None = None      # None: keep the stored target (0.75 on a fresh store)
    default_target: float = 0.75
    username: str = "admin"
    password: str | None = None          # None: keep the stored hash, or generate one on first start
    data_dir: Path = Path("./data")
    window_s: float = 300.0              # the displayed phi window
    difficulty_window_s: float = 60.0    # difficulties feeding the threshold quantile
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    # issue 16: refit the difficulty scorer on live labels (coherence/refit.py); None = never
    refit_interval_s: float | None = None
    refit_min_labels: int = 200

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ValueError("interval must be a positive number of seconds")
        if self.phi_target is not None:
            validate_target(self.phi_target)
        if self.refit_interval_s is not None and not (math.isfinite(self.refit_interval_s)
                                                      and self.refit_interval_s > 0):
            raise ValueError("refit interval must be a positive number of seconds")


DIFFICULTY_SAMPLE_LIMIT = 20_000


class CoherenceService:
    def __init__(
        self,
        options: CoherenceOptions | None = None,
        *,
        store: Store | None = None,
        store_url: str | None = None,
        clock: Callable[[], float] = time.time,
        hasher: PasswordHasher | None = None,
        announce: Callable[[str], None] = print,
    ) -> None:
        self.options = options or CoherenceOptions()
        self._store = store
        self._store_url = store_url
        self._owns_store = store is None
        self.clock = clock
        self._hasher = hasher
        self._announce = announce
        self.controller = Controller(self.options.controller)
        self._lock = threading.RLock()
        self._state: ControlState | None = None
        self._scheduler: Any = None
        self._auth: AuthService | None = None
        self.last_step_error: str | None = None
        self.last_refit: RefitOutcome | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise WiltonError("coherence service is not started")
        return self._store

    @property
    def auth(self) -> AuthService:
        if self._auth is None:
            raise WiltonError("coherence service is not started")
        return self._auth

    def start(self, *, scheduler: bool = True) -> None:
        if self._store is None:
            if not self._store_url:
                raise WiltonError("no store: pass store= or store_url=")
            from wilton_core.store import open_store

            self._store = open_store(self._store_url)
        self.store.migrate()
        self._auth = AuthService(self.store, self.options.auth, clock=self.clock, hasher=self._hasher)
        now = self.clock()
        self._load_state(now)
        self._ensure_admin(now)
        self.auth.maintain_keys(now)
        if scheduler:
            self._start_scheduler()

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self._owns_store and self._store is not None:
            self._store.close()
            self._store = None

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler  # type: ignore[import-untyped]

        sched = BackgroundScheduler(timezone="UTC")
        # One step at a time, and a backlog after a pause collapses into one step: the
        # controller measures since the previous step, so catching up step by step adds nothing.
        sched.add_job(self._tick, "interval", seconds=self.options.interval_s, id="phi-step",
                      max_instances=1, coalesce=True, misfire_grace_time=None)
        sched.add_job(self._maintain, "interval", hours=1, id="auth-maintenance",
                      max_instances=1, coalesce=True)
        if self.options.refit_interval_s is not None:
            # Its own job, so its own pool thread: a refit (seconds of CPU) never delays a phi step.
            sched.add_job(self._refit, "interval", seconds=self.options.refit_interval_s, id="route-refit",
                          max_instances=1, coalesce=True)
        sched.start()
        self._scheduler = sched

    def _tick(self) -> None:
        try:
            self.step()
            self.last_step_error = None
        except WiltonError as e:  # store down: keep the last state, try again next interval
            self.last_step_error = str(e)
            log.warning("control step failed: %s", e)

    def _refit(self) -> None:
        try:
            self.refit()
        except Exception as e:  # a failed refit keeps the active scorer; the next interval tries again
            log.warning("route refit failed: %s: %s", type(e).__name__, e)

    def refit(self, now: float | None = None) -> RefitOutcome:
        """One refit on the store's labels (coherence/refit.py): publishes only a better model."""
        from wilton_core.coherence.refit import refit

        out = refit(self.store, now=self.clock() if now is None else now,
                    min_labels=self.options.refit_min_labels)
        self.last_refit = out
        return out

    def _maintain(self) -> None:
        try:
            self.auth.maintain_keys()
            self.auth.purge()
        except WiltonError as e:
            log.warning("auth maintenance failed: %s", e)

    # -- state -------------------------------------------------------------------------------

    def _load_state(self, now: float) -> None:
        stored = self.store.get_control_state()
        state = stored or ControlState(phi_target=self.options.default_target, threshold=self.options.default_target)
        self._state = state
        if self.options.phi_target is not None and self.options.phi_target != state.phi_target:
            self.set_target(self.options.phi_target, actor="startup", client="cli", now=now, step=False)
        elif stored is None:
            self.store.put_control_state(state)

    def _ensure_admin(self, now: float) -> None:
        auth, name, password = self.auth, self.options.username, self.options.password
        if password:
            if not auth.password_matches(name, password):
                auth.set_password(name, password, ALL_SCOPES, now)
            return
        if auth.has_user(name):
            return
        generated = secrets.token_urlsafe(18)
        auth.set_password(name, generated, ALL_SCOPES, now)
        path = self.options.data_dir / ADMIN_PASSWORD_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(generated + "\n")
        os.chmod(path, 0o600)
        # Printed once, on purpose not through logging (logs are shipped; stdout of the first
        # start is read by the operator or the start script).
        self._announce(
            f"wilton-coherence: generated a password for user '{name}': {generated}\n"
            f"  (also written to {path}, mode 0600; set WILTON_ADMIN_PASSWORD to choose your own)"
        )

    def state(self) -> ControlState:
        with self._lock:
            if self._state is None:
                raise WiltonError("coherence service is not started")
            return self._state

    def step(self, now: float | None = None) -> ControlState:
        """One control interval: measure since the last step, move the threshold, publish."""
        with self._lock:
            t = self.clock() if now is None else now
            new = self._next_state(self.state(), t)
            with self.store.transaction():
                self._publish(new, t)
            self._state = new
            return new

    def _publish(self, new: ControlState, t: float) -> None:
        self.store.put_control_state(new)
        self.store.append_control_history(t, new.phi_target, new.measured_phi, new.threshold, new.error)

    def _next_state(self, state: ControlState, t: float) -> ControlState:
        """The controller's next state from the store's measurements (reads only; publishes nothing)."""
        opts = self.options
        last = state.updated_at
        since = last if 0 < last < t and t - last <= 3 * opts.interval_s else t - opts.interval_s
        store = self.store
        window = store.phi_window(since, t)
        # enough samples to cover the whole difficulty window at a few hundred requests/s
        interval_diffs = store.recent_difficulties(since, limit=DIFFICULTY_SAMPLE_LIMIT)
        diffs = store.recent_difficulties(t - opts.difficulty_window_s, limit=DIFFICULTY_SAMPLE_LIMIT)
        new = self.controller.step(state, window, diffs, t, interval_diffs)
        shown = store.phi_window(t - opts.window_s, t)
        phi = shown.phi(opts.controller.phi_basis)
        new.extra.update(window_phi=phi, window_requests=shown.requests, window_s=opts.window_s,
                         interval_s=opts.interval_s)
        return new

    def set_target(self, value: float, *, actor: str, client: str = "", now: float | None = None,
                   step: bool = True) -> ControlState:
        """Change the target, audit it, and (by default) step at once so routers follow now.

        One transaction: the audit row and the state routers read change together, or not at all.
        """
        target = validate_target(value)
        with self._lock:
            t = self.clock() if now is None else now
            old = self.state()
            new = replace(old, phi_target=target)
            if step:
                new = self._next_state(new, t)
            with self.store.transaction():
                self.store.execute(
                    "INSERT INTO phi_audit_log (ts, actor, action, old_value, new_value, client)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (t, actor[:128], "set_target", old.phi_target, target,
                                                   client[:128]),
                )
                if step:
                    self._publish(new, t)
                else:
                    self.store.put_control_state(new)
            self._state = new
            return new

    def audit_log(self, since: float = 0.0) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT ts, actor, action, old_value, new_value, client FROM phi_audit_log WHERE ts >= ? ORDER BY ts",
            (since,),
        )
        keys = ("ts", "actor", "action", "old_value", "new_value", "client")
        return [dict(zip(keys, r, strict=True)) for r in rows]
