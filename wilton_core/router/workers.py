"""`wilton-router --workers N`: N router processes sharing one port (SO_REUSEPORT).

One Python process tops out on one core (docs/benchmarks.md: the hop costs ~200 us of CPU), so
a machine with more cores serves more with more processes. Each worker is a full router: its
own event loop, breakers, latency statistics and ledger writer, and its own replica id
(`<replica>-w<i>`) in the ledger, exactly as several replicas on several hosts would be. The
kernel spreads new connections across the workers.

This process only supervises: it starts the workers, forwards SIGTERM/SIGINT (each worker drains
and flushes its ledger), restarts a worker that dies, and gives up (stopping the rest) when
workers keep dying, e.g. a port another program holds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import FrameType

__all__ = ["RestartPolicy", "Supervisor", "worker_argv"]

log = logging.getLogger("wilton.router.workers")


def worker_argv(argv: Sequence[str], index: int, replica: str) -> list[str]:
    """The worker's command line: the parent's flags, then one worker, its replica id, shared port."""
    return [sys.executable, "-m", "wilton_core.router.cli", *argv,
            "--workers", "1", "--replica-id", f"{replica}-w{index}", "--reuse-port"]


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Restart a dead worker, unless more than `max_restarts` happened within `window_s`."""

    max_restarts: int = 5
    window_s: float = 60.0
    delay_s: float = 0.5

    def allows(self, recent: Sequence[float], now: float) -> bool:
        return sum(1 for t in recent if now - t <= self.window_s) < self.max_restarts


class Supervisor:
    def __init__(self, argv_for: Callable[[int], list[str]], n: int, *, env: Mapping[str, str] | None = None,
                 policy: RestartPolicy = RestartPolicy(), stop_timeout_s: float = 20.0) -> None:
        self.argv_for = argv_for
        self.n = n
        self.env = dict(os.environ if env is None else env)
        self.policy = policy
        self.stop_timeout_s = stop_timeout_s
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * n
        self._restarts: deque[float] = deque(maxlen=64)
        self._stopping = threading.Event()

    def _spawn(self, i: int) -> None:
        self.procs[i] = subprocess.Popen(self.argv_for(i), env=self.env, stdin=subprocess.DEVNULL)
        log.info("router worker %d started (pid %d)", i, self.procs[i].pid)  # type: ignore[union-attr]

    def request_stop(self, *_: object) -> None:
        self._stopping.set()

    def _signal_all(self, sig: int) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(sig)

    def run(self, install_signals: bool = True) -> int:
        """Run until a signal (or `request_stop`); 0 when every worker stopped cleanly."""
        previous: dict[signal.Signals, signal.Handlers | Callable[[int, FrameType | None], object] | int | None] = {}
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self.request_stop)
        failed = 0
        try:
            for i in range(self.n):
                self._spawn(i)
            while not self._stopping.wait(0.2):
                for i, p in enumerate(self.procs):
                    if p is None or p.poll() is None:
                        continue
                    now = time.monotonic()
                    if not self.policy.allows(self._restarts, now):
                        print(f"wilton-router: worker {i} exited with {p.returncode}; workers keep dying "
                              f"({self.policy.max_restarts} restarts in {self.policy.window_s:.0f} s), stopping",
                              file=sys.stderr)
                        failed = p.returncode or 1
                        self._stopping.set()
                        break
                    log.warning("router worker %d (pid %d) exited with %s; restarting", i, p.pid, p.returncode)
                    self._restarts.append(now)
                    time.sleep(self.policy.delay_s)
                    self._spawn(i)
        finally:
            self._signal_all(signal.SIGTERM)
            deadline = time.monotonic() + self.stop_timeout_s
            for p in self.procs:
                if p is None:
                    continue
                try:
                    p.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                if p.returncode not in (0, -signal.SIGTERM) and not failed:
                    failed = p.returncode or 1
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return failed
