"""What this router knows about its models' health: the snapshot it publishes to the store
(`router_health:<replica>`, read by the exporter), and the probe loop that keeps models that never
worked out of the chain."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from wilton_core.router.state import LedgerWorker, RouterState
from wilton_core.store.base import Store

__all__ = ["health_snapshot", "load_model_status", "probe_loop", "publish_health"]

log = logging.getLogger("wilton.router")


def health_snapshot(state: RouterState, writer: LedgerWorker | None) -> dict[str, Any]:
    now = time.monotonic()
    wall = state.clock()
    models = {}
    for mid, rt in state.runtimes.items():
        b = rt.breaker
        models[mid] = {
            # rate limited is healthy (it answers, just not now): alerts on health must not fire on 429s
            "healthy": rt.configured and not b.broken(now),
            "configured": rt.configured,
            "breaker": b.state(now),
            "cooldown_until": wall + b.cooldown_remaining(now) if b.cooldown_remaining(now) else 0.0,
            "rate_limited_until": wall + (b.deferred_until - now) if b.deferred_until > now else 0.0,
            "consecutive_failures": b.consecutive_failures,
            "last_error": b.last_error,
        }
    snap: dict[str, Any] = {"ts": wall, "replica": state.replica, "models": models}
    if writer is not None:
        st = writer.stats()
        snap["ledger"] = {"pending": st.queued, "dropped": st.dropped, "written": st.written}
    if state.shadow is not None:  # issue 16: the exporter's wilton_shadow_* metrics
        snap["shadow"] = state.shadow.stats()
    return snap


def publish_health(state: RouterState, store: Store, writer: LedgerWorker | None) -> None:
    """Blocking: run it in a thread."""
    store.kv_set(f"router_health:{state.replica}", orjson.dumps(health_snapshot(state, writer)).decode())


def load_model_status(store: Store) -> dict[str, str]:
    """The registry's status of every model (blocking: run it in a thread)."""
    from wilton_core.registry.registry import StatusTable

    return {mid: r.status for mid, r in StatusTable(store).load().items()}


async def probe_loop(state: RouterState, store: Store | None, environ: Mapping[str, str]) -> None:
    """Test every configured model once at start, then re-test failed ones on their schedule.

    Probes are short real generations (registry.test_model); results go to the store, where
    every replica and `wiltonctl models list` see them. Live traffic is guarded separately by
    the breakers; this keeps models that never worked out of the chain.
    """
    from wilton_core.registry.registry import ModelRegistry, RetestPolicy

    policy = RetestPolicy(failed_base_s=30.0, failed_max_s=300.0, rate_limited_s=120.0, available_every_s=None)
    # probes use their own short-lived clients (test_model closes what it used)
    registry = ModelRegistry(state.config, store=store, environ=environ, clock=state.clock)
    while True:
        try:
            due = await asyncio.to_thread(registry.due, state.clock(), policy)
            if due:
                results = await registry.test(due, timeout=30.0)
                state.model_status.update({mid: r.status for mid, r in results.items()})
        except Exception as e:  # a probe problem must never take routing down
            log.warning("model probes failed: %s", type(e).__name__)
        await asyncio.sleep(15.0)
