"""Start the stack's real processes on free loopback ports, wait for readiness, stop them.

Used by the end-to-end tests and the benchmarks. Every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

__all__ = ["ManagedProcess", "free_port", "wait_http"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, *, ok: Sequence[int] = (200,),
              proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers with a status in `ok`; fail fast if `proc` exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status in ok:
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            if e.code in ok:
                return
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout:.0f}s ({last})")


class ManagedProcess:
    """A child process with its output in a log file; `stop()` is SIGTERM then SIGKILL."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, log: Path,
                 cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.log_path = log
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @classmethod
    def python_module(cls, module: str, *args: str, **kw: object) -> ManagedProcess:
        return cls([sys.executable, "-m", module, *args], **kw)  # type: ignore[arg-type]

    def start(self, ready_url: str | None = None, timeout: float = 30.0,
              ok: Sequence[int] = (200,)) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(self.argv, env=self.env, cwd=self.cwd, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if ready_url:
            try:
                wait_http(ready_url, timeout, ok=ok, proc=self.proc)
            except Exception:
                self.stop()
                raise RuntimeError(f"{self.argv[:4]} failed to start; log:\n{self.log_text()[-3000:]}") from None
        return self

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, grace: float = 15.0) -> int | None:
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            rc = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> ManagedProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
