"""Shadow judging's runner (issue 16 §2): a sampled request answered by the other tier and judged.

The service hands a `ShadowTicket` to a sampled request when it decides its route; when the
client's answer is complete (the whole body, or the end of the stream) the ticket starts one
background comparison:

    other tier's answer  →  judge model scores both (order drawn at random)  →  route_labels row

The client never waits for any of it and never sees it: the comparison is a separate task, its
failures are logged and counted, and it calls the providers directly — not through the fallback
executor — so nothing it does touches a model's breaker or the ledger (phi, spend per key and
the dashboards stay about client traffic only; the shadow's own spend is in its metrics and in
each label's `detail.cost_usd`). Decisions are in core/shadow.py and core/judge.py.

Why the router's model runtimes and not the insight hook's backends: the judge must be a model
the operator declared (with its prices, for the spend cap; its limits and timeouts; its key),
and the insight hook's "local" backend is an HTTP call back into this router, which would make
the judge's call a client request of its own (sampled, ledgered, counted in phi).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from wilton_core.config import LearningConfig, ModelConfig
from wilton_core.core import shadow as policy
from wilton_core.core.judge import judge_messages, parse_verdict
from wilton_core.core.messages import content_text, transcript
from wilton_core.errors import BadRequestError, ProviderError
from wilton_core.store.route_labels import RouteLabel, add_labels
from wilton_core.types import Usage

if TYPE_CHECKING:
    from wilton_core.access.caller import Caller
    from wilton_core.router.fallback import ModelRuntime
    from wilton_core.router.service import RouterService
    from wilton_core.store.base import Store

__all__ = ["ShadowCounts", "ShadowJudge", "ShadowTicket", "attach_shadow"]

log = logging.getLogger("wilton.router.shadow")

MAX_STREAM_CHARS = 64 * 1024  # a streamed answer is collected up to this for the judge


@dataclass(slots=True)
class ShadowCounts:
    """What this process's comparisons did, since it started. Published with the router's health
    snapshot (kv `router_health:<replica>`, about once a second), so the exporter's
    `wilton_shadow_*` metrics count every worker and replica."""

    sampled: int = 0      # comparisons started (the other tier was asked)
    judged: int = 0       # labels written
    judge_unparsable: int = 0
    spend_usd: float = 0.0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(policy.SKIP_REASONS, 0))
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(policy.FAIL_STAGES, 0))

    def as_json(self, in_flight: int, budget_spent_usd: float) -> dict[str, Any]:
        return {"sampled": self.sampled, "judged": self.judged, "judge_unparsable": self.judge_unparsable,
                "spend_usd": self.spend_usd, "skipped": dict(self.skipped), "failed": dict(self.failed),
                "in_flight": in_flight, "budget_spent_usd": budget_spent_usd}


def _answer_text(data: Mapping[str, Any]) -> str:
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        message = choices[0].get("message")
        if isinstance(message, Mapping):
            return content_text(message.get("content"))
    return ""


class ShadowTicket:
    """One request drawn for shadow judging, from its routing decision to the end of its answer."""

    __slots__ = ("_judge", "_parts", "_size", "caller", "done", "key_id", "max_tokens", "messages", "prompt",
                 "request_id", "sampling", "truncated")

    def __init__(self, judge: ShadowJudge, request_id: str, messages: list[Any], body: Mapping[str, Any],
                 caller: Caller | None, key_id: str, prompt: str | None) -> None:
        self._judge = judge
        self.request_id = request_id
        self.messages = messages
        self.max_tokens = policy.shadow_max_tokens(body)
        # the client's sampling settings go to the shadow too: the two answers should be comparable
        self.sampling = {k: body[k] for k in ("temperature", "top_p", "stop", "seed") if body.get(k) is not None}
        self.caller = caller
        self.key_id = key_id
        self.prompt = prompt
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False
        self.done = False

    def feed(self, chunk: Mapping[str, Any]) -> None:
        """Collect the text of one streamed chunk (bounded)."""
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            return
        delta = choices[0].get("delta")
        text = delta.get("content") if isinstance(delta, Mapping) else None
        if isinstance(text, str) and text:
            room = MAX_STREAM_CHARS - self._size
            if len(text) > room:
                text = text[:room]
                self.truncated = True
            self._parts.append(text)
            self._size += len(text)

    def completed(self, served: ModelConfig, data: Mapping[str, Any], usage: Usage) -> None:
        """A non-streamed answer was produced for the client: start the comparison (or skip it)."""
        self._finish(served, _answer_text(data), usage)

    def streamed(self, served: ModelConfig, usage: Usage) -> None:
        """A stream ended normally: start the comparison over the collected text."""
        self._finish(served, "".join(self._parts), usage)

    def _finish(self, served: ModelConfig, text: str, usage: Usage) -> None:
        if self.done:
            return
        self.done = True
        self._parts = []
        try:
            self._judge.start(self, served, text, usage)
        except Exception:  # never the client's problem
            log.exception("shadow judging could not start for %s", self.request_id)


class ShadowJudge:
    """Samples requests, runs comparisons in the background (at most `shadow_max_in_flight`; more
    are dropped, never queued), keeps the spend within the hourly cap, writes labels to the store."""

    def __init__(self, learning: LearningConfig, runtimes: Mapping[str, ModelRuntime], *,
                 store: Store | None = None, capture_prompts: bool = False,
                 model_status: Callable[[], Mapping[str, str]] | None = None,
                 budget_usd_per_hour: float | None = None, rng: random.Random | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.learning = learning
        self.runtimes = runtimes
        self.store = store
        self.capture_prompts = capture_prompts
        self.counts = ShadowCounts()
        self._model_status = model_status or dict
        cap = learning.shadow_budget_usd_per_hour if budget_usd_per_hour is None else budget_usd_per_hour
        self.window = policy.SpendWindow(cap)
        self._rng = rng or random.Random()
        self._clock = clock
        self._monotonic = monotonic
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def _skip(self, reason: str) -> None:
        self.counts.skipped[reason] += 1

    def stats(self) -> dict[str, Any]:
        """The counts for the health snapshot, with the rolling hour's spend as of now."""
        return self.counts.as_json(self.in_flight, self.window.spent(self._clock()))

    # ---- sampling (on the request path: memory only, no awaits) -------------------------------

    def ticket(self, body: Mapping[str, Any], request_id: str, caller: Caller | None, *, key_id: str = "",
               prompt: str | None = None) -> ShadowTicket | None:
        """A ticket when this request is drawn and may be compared, else None (a drawn request that
        may not is counted by reason). Never raises: it runs inside the client's routing decision."""
        try:
            return self._ticket(body, request_id, caller, key_id, prompt)
        except Exception:
            log.exception("shadow sampling failed for %s", request_id)
            return None

    def _ticket(self, body: Mapping[str, Any], request_id: str, caller: Caller | None, key_id: str,
                prompt: str | None) -> ShadowTicket | None:
        if not policy.draw(self.learning.shadow_share, self._rng.random()):
            return None
        # privacy first (issue 14): a local-only key or request, or one that asked for the local
        # class, never has its text sent to an API model — not as a shadow, not to a judge
        if (caller is not None and caller.local_only) or body.get("model") == "local":
            self._skip("local_only")
            return None
        if policy.unsupported_reason(body) is not None:
            self._skip("unsupported")
            return None
        if self.window.exhausted(self._clock()):
            self._skip("budget")
            return None
        if self.in_flight >= self.learning.shadow_max_in_flight:
            self._skip("busy")
            return None
        # a private copy: the comparison runs after the client's request is gone
        messages = orjson.loads(orjson.dumps(body["messages"]))
        return ShadowTicket(self, request_id, messages, body, caller, key_id, prompt)

    def _candidates(self, caller: Caller | None) -> list[policy.ShadowModel]:
        now = self._monotonic()
        status = self._model_status()
        out = []
        for mid, rt in self.runtimes.items():
            m = rt.cfg
            if m.kind != "chat":
                continue
            if caller is not None and not caller.permits(mid, m.is_local):
                continue  # a key's allow-list holds for its shadow comparison too
            usable = rt.configured and rt.breaker.available(now) and status.get(mid) != "failed"
            out.append(policy.ShadowModel(mid, m.is_local, m.tier, m.capability, m.input_cost_per_mtok,
                                          m.output_cost_per_mtok, usable))
        return out

    def start(self, t: ShadowTicket, served: ModelConfig, text: str, usage: Usage) -> None:
        """The client's answer is complete: choose the models, reserve the money, start the task."""
        if not text.strip():
            return  # nothing to judge (a refusal or an empty answer): not a comparison
        if t.caller is not None and t.caller.local_only:  # checked again: this must never slip
            self._skip("local_only")
            return
        models = self._candidates(t.caller)
        judge = policy.pick_judge(models, self.learning.judge)
        other = policy.pick_other(models, served.is_local, exclude=judge.id if judge else "")
        if judge is None or other is None:
            self._skip("no_model")
            return
        if self.in_flight >= self.learning.shadow_max_in_flight:
            self._skip("busy")
            return
        estimate = policy.estimate_usd(t.messages, t.max_tokens, other, judge, usage.completion_tokens)
        if not self.window.admit(self._clock(), estimate):
            self._skip("budget")
            return
        self.counts.sampled += 1
        task = asyncio.get_running_loop().create_task(
            self._compare(t, served, text, other, judge, estimate), name=f"shadow:{t.request_id}")
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Wait (bounded) for the comparisons running now to end."""
        tasks = list(self._tasks)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    async def stop(self) -> None:
        """Cancel comparisons still running (a shutdown does not wait for labels)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- the comparison (background) ---------------------------------------------------------

    async def _ask(self, model_id: str, body: dict[str, Any]) -> tuple[str, Usage]:
        # the provider directly: same client, limits and timeouts as client traffic, but no
        # breaker or ledger — a shadow call's outcome is nobody's health and no client's request
        rt = self.runtimes[model_id]
        res = await rt.provider.complete(body)
        return _answer_text(res.data), res.usage

    async def _judge(self, model_id: str, messages: list[dict[str, str]]) -> tuple[str, Usage]:
        body: dict[str, Any] = {"model": model_id, "messages": messages, "max_tokens": policy.JUDGE_MAX_TOKENS,
                                "temperature": 0.0, "response_format": {"type": "json_object"}}
        try:
            return await self._ask(model_id, body)
        except BadRequestError:
            # some OpenAI-compatible servers refuse JSON mode: the prompt asks for JSON anyway,
            # and the verdict is parsed just as strictly
            body.pop("response_format")
            return await self._ask(model_id, body)

    async def _compare(self, t: ShadowTicket, served: ModelConfig, client_text: str,
                       other: policy.ShadowModel, judge: policy.ShadowModel, reserved: float) -> None:
        spent = 0.0
        stage = "answer"
        try:
            body: dict[str, Any] = {"model": other.id, "messages": t.messages, "max_tokens": t.max_tokens,
                                    **t.sampling}
            shadow_text, used = await self._ask(other.id, body)
            spent += other.cost_usd(used.prompt_tokens, used.completion_tokens)
            if not shadow_text.strip():
                self.counts.failed["answer"] += 1
                return
            local_text, api_text = (client_text, shadow_text) if served.is_local else (shadow_text, client_text)
            swapped = self._rng.random() < 0.5  # which answer is shown first: position bias is real
            first, second = (api_text, local_text) if swapped else (local_text, api_text)
            stage = "judge"
            verdict_text, used = await self._judge(judge.id, judge_messages(
                transcript(t.messages, limit=1 << 20), first, second))
            spent += judge.cost_usd(used.prompt_tokens, used.completion_tokens)
            verdict = parse_verdict(verdict_text)
            if verdict is None:
                self.counts.judge_unparsable += 1
                log.info("shadow %s: the judge %s did not reply with the asked-for scores", t.request_id, judge.id)
                return
            weak, strong = (verdict.b, verdict.a) if swapped else (verdict.a, verdict.b)
            local_model, api_model = (served.id, other.id) if served.is_local else (other.id, served.id)
            label = RouteLabel(
                request_id=t.request_id, source="shadow", ts=self._clock(), model=api_model,
                weak_score=weak, strong_score=strong, prompt=t.prompt if self.capture_prompts else None,
                key_id=t.key_id or None,
                detail={"judge": judge.id, "local_model": local_model, "api_model": api_model,
                        "served": "local" if served.is_local else "api", "cost_usd": round(spent, 8),
                        "swapped": swapped, "truncated": t.truncated})
            stage = "store"
            if self.store is not None:
                await asyncio.to_thread(add_labels, self.store, [label])
            self.counts.judged += 1
        except asyncio.CancelledError:
            raise
        except ProviderError as err:
            self.counts.failed[stage] += 1
            log.info("shadow %s: %s failed (%s)", t.request_id, stage, err.kind)
        except Exception:
            self.counts.failed[stage] += 1
            log.exception("shadow %s: %s failed", t.request_id, stage)
        finally:
            now = self._clock()
            self.window.settle(now, reserved, spent)
            self.counts.spend_usd += spent



def attach_shadow(service: RouterService, *, workers: int = 1) -> ShadowJudge | None:
    """Give the service a shadow judge when `[learning] shadow_share` > 0 (else leave it off).

    The hourly cap is the whole router's: with `--workers N` each process gets cap / N (a
    process cannot see the others' spend; several replicas on several hosts each hold the full
    cap — set it per replica)."""
    learning = service.config.learning
    if learning.shadow_share <= 0.0:
        return None
    service.shadow = ShadowJudge(
        learning, service.runtimes, store=service.store, capture_prompts=service.capture_prompts,
        model_status=lambda: service.model_status,
        budget_usd_per_hour=learning.shadow_budget_usd_per_hour / max(1, workers))
    return service.shadow
