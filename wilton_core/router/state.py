"""What one router process holds in memory, shared by the service's jobs (see service.py).

Everything on the request path reads this and nothing else: the control state (refreshed from
the store about once a second by `lifecycle.py`), each model's client and breaker, the registry
status, the latency statistics this process keeps itself, the difficulty scorer, and the shadow
judge when shadow judging is on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from wilton_core.config import RoutingConfig, StackConfig
from wilton_core.core.classify import Scorer
from wilton_core.core.control_state import ControlState
from wilton_core.core.latency import LatencyTracker
from wilton_core.router.fallback import ModelRuntime

if TYPE_CHECKING:
    from wilton_core.router.shadow import ShadowJudge
    from wilton_core.store.ledger_writer import WriterStats

__all__ = ["LedgerWorker", "RouterState"]


class LedgerWorker(Protocol):
    """The background writer behind a ledger: the service starts it, stops it (every row answered so
    far is written when `stop` returns) and reports its queue in /readyz and the health snapshot;
    the feedback endpoint flushes it before calling a request id unknown."""

    def start(self) -> None: ...

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued now; True once written, False on timeout (POST /v1/feedback)."""
        ...

    def stop(self, timeout: float = 10.0) -> int: ...

    def stats(self) -> WriterStats: ...


@dataclass(slots=True, eq=False)
class RouterState:
    config: StackConfig
    runtimes: dict[str, ModelRuntime]
    latency: LatencyTracker
    clock: Callable[[], float]  # wall clock (ledger timestamps, control-state age)
    replica: str
    started_at: float
    control: ControlState
    scorer: Scorer | None = None  # loaded by start() unless given
    control_loaded_at: float | None = None
    model_status: dict[str, str] = field(default_factory=dict)  # registry status by id ("failed" excludes)
    is_local: dict[str, bool] = field(default_factory=dict)
    # issue 16 §2: shadow judging, opt-in ([learning] shadow_share); set by router/shadow.attach_shadow
    shadow: ShadowJudge | None = None

    def __post_init__(self) -> None:
        self.is_local = {mid: rt.cfg.is_local for mid, rt in self.runtimes.items()}

    @property
    def routing(self) -> RoutingConfig:
        return self.config.routing
