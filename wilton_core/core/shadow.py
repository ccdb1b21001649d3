"""Shadow judging's decisions (issue 16 §2), pure: which requests, which models, how much money.

A small share of chat requests is answered a second time by a model of the *other* tier (local
when an API model served the client, the best API model when a local one did) and a judge model
scores both answers; the scores become routing labels. Everything that decides goes here, as plain
functions of the request, the model facts, a clock reading and a random draw; the runner
(router/shadow.py) only does the I/O.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wilton_core.core.messages import estimate_tokens, has_images

__all__ = [
    "FAIL_STAGES",
    "SKIP_REASONS",
    "ShadowModel",
    "SpendWindow",
    "draw",
    "estimate_usd",
    "pick_judge",
    "pick_other",
    "shadow_max_tokens",
    "unsupported_reason",
]

# why a drawn request was not shadowed (the `reason` label of wilton_shadow_skipped_total)
SKIP_REASONS = ("local_only", "unsupported", "no_model", "budget", "busy")
# where a started comparison failed (the `stage` label of wilton_shadow_failed_total)
FAIL_STAGES = ("answer", "judge", "store")

# the shadow answer is capped: a comparison needs a comparable answer, not an unbounded bill
SHADOW_MAX_TOKENS = 1024
JUDGE_MAX_TOKENS = 200
HOUR_S = 3600.0

_CAPABILITY_RANK = {"basic": 0, "standard": 1, "advanced": 2}
_TIER_RANK = {"selfhost": 0, "edge": 1, "frontier": 2}


@dataclass(frozen=True, slots=True)
class ShadowModel:
    """What the choice needs to know about one chat model, now."""

    id: str
    is_local: bool
    tier: str
    capability: str
    input_cost_per_mtok: float = 0.0
    output_cost_per_mtok: float = 0.0
    usable: bool = True  # configured, its breaker closed and not deferred, not failed by the registry

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_cost_per_mtok + tokens_out * self.output_cost_per_mtok) / 1e6


def draw(share: float, u: float) -> bool:
    """Is this request sampled? `u` is a uniform draw in [0, 1) owned by the caller."""
    return share > 0.0 and u < share


def unsupported_reason(body: Mapping[str, Any]) -> str | None:
    """Why a (validated) chat request cannot be compared as plain text, or None when it can.

    Tools, images and structured output would need both sides to support them and a judge that
    reads them; skipping them keeps the labels about what the scorer sees (the text)."""
    if body.get("tools") or body.get("functions") or body.get("tool_choice") not in (None, "none"):
        return "tools"
    rf = body.get("response_format")
    if isinstance(rf, Mapping) and rf.get("type") not in (None, "text"):
        return "response_format"
    n = body.get("n")
    if n is not None and n != 1:
        return "n"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages"
    for m in messages:
        if not isinstance(m, Mapping) or m.get("role") in ("tool", "function") or m.get("tool_calls"):
            return "tools"
    if has_images(messages):
        return "images"
    if body.get("modalities") or body.get("audio"):
        return "audio"
    return None


def _strength(m: ShadowModel) -> tuple[int, int, float]:
    # capability first, then tier; between equals the pricier one is taken as the stronger
    return (_CAPABILITY_RANK.get(m.capability, 0), _TIER_RANK.get(m.tier, 0),
            m.input_cost_per_mtok + m.output_cost_per_mtok)


def pick_other(models: Sequence[ShadowModel], served_local: bool, exclude: str = "") -> ShadowModel | None:
    """The model of the other tier that answers the shadow: the strongest usable one (config order
    breaks ties). `exclude`: the judge, when another model of that tier can answer instead."""
    side = [m for m in models if m.is_local is not served_local and m.usable]
    preferred = [m for m in side if m.id != exclude] or side
    if not preferred:
        return None
    best = max(_strength(m) for m in preferred)
    return next(m for m in preferred if _strength(m) == best)


def pick_judge(models: Sequence[ShadowModel], configured: str | None) -> ShadowModel | None:
    """The configured judge when it is usable, else (unset) the strongest usable API model; None
    when there is none (a configured judge that is down is not replaced: its operator chose it)."""
    if configured is not None:
        return next((m for m in models if m.id == configured and m.usable), None)
    api = [m for m in models if not m.is_local and m.usable]
    if not api:
        return None
    best = max(_strength(m) for m in api)
    return next(m for m in api if _strength(m) == best)


def shadow_max_tokens(body: Mapping[str, Any]) -> int:
    """Output cap of the shadow answer: the client's own cap, at most SHADOW_MAX_TOKENS."""
    asked = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(asked, int) and not isinstance(asked, bool) and asked > 0:
        return min(asked, SHADOW_MAX_TOKENS)
    return SHADOW_MAX_TOKENS


def estimate_usd(messages: Any, max_tokens: int, answerer: ShadowModel, judge: ShadowModel,
                 answer_tokens: int) -> float:
    """An upper estimate of one comparison's cost: the shadow answer (prompt in, up to max_tokens
    out) and the judge (prompt and both answers in, JUDGE_MAX_TOKENS out). `answer_tokens`: the
    client's answer, as counted by its usage (the judge reads it too)."""
    prompt = estimate_tokens(messages) + 8
    judge_in = prompt + answer_tokens + max_tokens + 200  # the instructions are about 200 tokens
    return answerer.cost_usd(prompt, max_tokens) + judge.cost_usd(judge_in, JUDGE_MAX_TOKENS)


class SpendWindow:
    """Money spent on shadow comparisons over a rolling hour, plus what in-flight ones may still
    spend (their estimate, reserved at admission and settled to the real cost when they finish).

    `admit` says yes only while spent + reserved + the new estimate stays within the cap, so the
    cap holds as long as the estimates are upper bounds (the output side is: max_tokens caps it).
    Per process: N workers or replicas each hold their own window (the caller divides the cap).
    """

    def __init__(self, cap_usd: float, window_s: float = HOUR_S) -> None:
        self.cap_usd = cap_usd
        self.window_s = window_s
        self._spent: deque[tuple[float, float]] = deque()
        self._spent_sum = 0.0
        self.reserved_usd = 0.0

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - self.window_s:
            self._spent_sum -= self._spent.popleft()[1]
        if not self._spent:
            self._spent_sum = 0.0  # no float drift left behind an empty window

    def spent(self, now: float) -> float:
        self._expire(now)
        return max(0.0, self._spent_sum)

    def exhausted(self, now: float) -> bool:
        """Nothing more fits (checked before any work is done for a request)."""
        return self.spent(now) + self.reserved_usd >= self.cap_usd

    def admit(self, now: float, estimate_usd: float) -> bool:
        if self.spent(now) + self.reserved_usd + estimate_usd > self.cap_usd:
            return False
        self.reserved_usd += estimate_usd
        return True

    def settle(self, now: float, reserved_usd: float, actual_usd: float) -> None:
        """Release a reservation and charge what was really spent (also after a failure: the
        calls that did answer were paid for)."""
        self.reserved_usd = max(0.0, self.reserved_usd - reserved_usd)
        if actual_usd > 0.0:
            self._spent.append((now, actual_usd))
            self._spent_sum += actual_usd
