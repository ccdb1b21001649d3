"""The router's background life: start and stop, and the polling that keeps its memory fresh.

The request path never waits on the store: the control state, the registry status and the
active difficulty scorer are pulled here, about once a second, in threads; this router's health
is published the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from wilton_core.router.health import load_model_status, probe_loop, publish_health
from wilton_core.router.state import LedgerWorker, RouterState
from wilton_core.router.tracing import Tracing
from wilton_core.store.base import Store

if TYPE_CHECKING:
    from wilton_core.core.difficulty_versions import ActiveScorer

__all__ = ["Lifecycle"]

log = logging.getLogger("wilton.router")


class Lifecycle:
    def __init__(self, state: RouterState, *, store: Store | None, writer: LedgerWorker | None,
                 tracing: Tracing | None, environ: Mapping[str, str], probe_models: bool) -> None:
        self._state = state
        self.store = store
        self.writer = writer
        self.tracing = tracing
        self._environ = environ
        self.probe_models = probe_models
        self._active_scorer: ActiveScorer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        st = self._state
        if st.scorer is None:
            from wilton_core.core.difficulty import load_default_scorer

            default = load_default_scorer()
            st.scorer = default
            if self.store is not None:
                # The default scorer follows the store's active learned version (route learn).
                from wilton_core.core.difficulty_versions import ActiveScorer
                from wilton_core.store.difficulty_models import DifficultyVersions

                self._active_scorer = ActiveScorer(DifficultyVersions(self.store), default)
        st.scorer.score([{"role": "user", "content": "warm up"}])  # load now, not on request 1
        if self.writer is not None:
            self.writer.start()
        if self.store is not None:
            await self.refresh_control()
            self._tasks.append(asyncio.create_task(self._refresh_loop(), name="control-refresh"))
        if self.probe_models:
            self._tasks.append(asyncio.create_task(probe_loop(st, self.store, self._environ), name="model-probes"))

    async def stop(self) -> None:
        if self._state.shadow is not None:  # comparisons in flight are cancelled, never awaited long
            await self._state.shadow.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for rt in self._state.runtimes.values():
            with contextlib.suppress(Exception):
                await rt.provider.aclose()
        if self.writer is not None:
            # every request answered so far is in the ledger once this returns
            await asyncio.to_thread(self.writer.stop, 30.0)
        if self.tracing is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.tracing.shutdown)

    async def refresh_control(self) -> None:
        """Pull the control state and model status from the store (in a thread: never on the loop)."""
        store = self.store
        if store is None:
            return
        st = self._state
        try:
            state = await asyncio.to_thread(store.get_control_state)
            if state is not None:
                st.control = state
                st.control_loaded_at = st.clock()
            st.model_status = await asyncio.to_thread(load_model_status, store)
            await asyncio.to_thread(publish_health, st, store, self.writer)
        except Exception as e:  # a slow or absent store must never take routing down
            log.warning("control state refresh failed: %s", type(e).__name__)
        active = self._active_scorer
        if active is not None and st.scorer is not None:  # a new learned version, loaded only when it changes
            try:
                st.scorer = await asyncio.to_thread(active.refresh, st.scorer)
            except Exception as e:  # keep routing with the scorer we have
                log.warning("difficulty model refresh failed: %s", type(e).__name__)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._state.routing.control_refresh_s)
            await self.refresh_control()
