"""The prompt: the window's numbers (never raw prompts unless asked), trimmed to a token budget.

The model sees a compact JSON digest of `InsightStats`. When the digest does not fit, detail is
dropped in a fixed order (prompt excerpts, anomalies, trajectory resolution, costliest
requests, ...) and the prompt says what was left out, so the model does not mistake a trimmed
list for a quiet hour.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wilton_core.insight.stats import InsightStats

__all__ = ["SYSTEM_PROMPT", "BuiltPrompt", "build_prompt", "estimate_tokens", "split_budget"]

SYSTEM_PROMPT = (
    "You are the operations analyst of a local-first LLM router. The router keeps a target share "
    "phi of requests on self-hosted models (tier 'selfhost') and sends the hardest remaining "
    "requests to API tiers ('edge', 'frontier'). A controller moves a difficulty threshold so the "
    "measured phi meets the target. You receive the last window's statistics as JSON (times are "
    "Unix seconds, costs USD, latencies seconds). Explain what happened and why, citing the numbers, "
    "then give concrete, prioritised recommendations (config keys, models, thresholds, capacity). "
    "Do not invent numbers that are not in the data. Answer in Markdown with exactly two sections: "
    "'## Explanation' and '## Recommendations'."
)

# A conservative characters-per-token ratio for JSON-heavy English text: it over-counts
# slightly, so a prompt that passes here fits the real tokenizer's budget.
_CHARS_PER_TOKEN = 3.0
MIN_OUTPUT_TOKENS = 128
MAX_OUTPUT_TOKENS = 2048


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def split_budget(token_budget: int) -> tuple[int, int]:
    """(prompt tokens, max output tokens) for one report's total budget."""
    out = max(MIN_OUTPUT_TOKENS, min(MAX_OUTPUT_TOKENS, token_budget // 4))
    return max(0, token_budget - out), out


@dataclass(slots=True)
class BuiltPrompt:
    system: str
    user: str
    max_tokens: int
    prompt_tokens_est: int
    trimmed: list[str] = field(default_factory=list)
    fits: bool = True


def _round(obj: Any) -> Any:
    """Four significant decimals are plenty for an explanation and halve the digest."""
    if isinstance(obj, float):
        return round(obj, 4) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    return obj


def _downsample(points: list[Any], n: int) -> list[Any]:
    if len(points) <= n:
        return points
    if n <= 0:
        return []
    step = len(points) / n
    return [points[int(i * step)] for i in range(n)]


def _digest(stats: InsightStats, prompts: Mapping[str, str] | None) -> dict[str, Any]:
    d = _round(stats.to_dict())
    d["window_hours"] = round((stats.until - stats.since) / 3600, 2)
    if prompts:
        d["prompt_excerpts"] = {rid: text[:2000] for rid, text in prompts.items()}
    return dict(d)


# Each step removes detail from the digest in place and names what it removed.
def _trim_steps() -> list[tuple[str, Callable[[dict[str, Any]], bool]]]:
    def cap(key: str, n: int) -> Callable[[dict[str, Any]], bool]:
        def f(d: dict[str, Any]) -> bool:
            if isinstance(d.get(key), list) and len(d[key]) > n:
                d[key] = d[key][:n]
                return True
            return False
        return f

    def shorten_prompts(n: int) -> Callable[[dict[str, Any]], bool]:
        def f(d: dict[str, Any]) -> bool:
            ex = d.get("prompt_excerpts")
            if not ex or all(len(v) <= n for v in ex.values()):
                return False
            d["prompt_excerpts"] = {k: v[:n] for k, v in ex.items()}
            return True
        return f

    def drop(key: str) -> Callable[[dict[str, Any]], bool]:
        def f(d: dict[str, Any]) -> bool:
            return d.pop(key, None) is not None
        return f

    def traj(n: int) -> Callable[[dict[str, Any]], bool]:
        def f(d: dict[str, Any]) -> bool:
            pts = d["phi"]["trajectory"]
            if len(pts) <= n:
                return False
            d["phi"]["trajectory"] = _downsample(pts, n)
            return True
        return f

    return [
        ("prompt excerpts shortened to 300 characters", shorten_prompts(300)),
        ("prompt excerpts", drop("prompt_excerpts")),
        ("anomalies beyond the first 20", cap("anomalies", 20)),
        ("phi trajectory reduced to 12 points", traj(12)),
        ("costliest requests beyond 5", cap("costliest", 5)),
        ("rate-limit episodes beyond 10", cap("rate_limit_episodes", 10)),
        ("anomalies beyond the first 5", cap("anomalies", 5)),
        ("per-model latency beyond 10 models", cap("latency", 10)),
        ("phi trajectory", traj(0)),
        ("costliest requests", drop("costliest")),
        ("anomalies", drop("anomalies")),
        ("rate-limit episodes", drop("rate_limit_episodes")),
    ]


def _render(d: dict[str, Any], trimmed: list[str]) -> str:
    note = ("Left out to fit the token budget: " + "; ".join(trimmed) + ".\n") if trimmed else ""
    return (
        "Statistics for the window (JSON):\n"
        + json.dumps(d, separators=(",", ":"), sort_keys=True)
        + "\n" + note
        + "Explain the phi trajectory and time off target, controller behaviour, tier and cost mix, "
          "latency against the target, errors/fallbacks/rate limits and anomalies; then recommend."
    )


def build_prompt(
    stats: InsightStats,
    *,
    token_budget: int,
    prompts: Mapping[str, str] | None = None,
    redact: Callable[[str], str] = lambda s: s,
) -> BuiltPrompt:
    """The messages for one report. `prompts` (request id -> text) only with --include-prompts;
    `redact` runs over the final text, so nothing bypasses it."""
    prompt_budget, max_tokens = split_budget(token_budget)
    d = _digest(stats, prompts)
    trimmed: list[str] = []
    user = redact(_render(d, trimmed))
    steps = iter(_trim_steps())
    while estimate_tokens(SYSTEM_PROMPT) + estimate_tokens(user) > prompt_budget:
        step = next(steps, None)
        if step is None:
            break
        label, apply = step
        if apply(d):
            trimmed.append(label)
            user = redact(_render(d, trimmed))
    est = estimate_tokens(SYSTEM_PROMPT) + estimate_tokens(user)
    return BuiltPrompt(SYSTEM_PROMPT, user, max_tokens, est, trimmed, fits=est <= prompt_budget)
