"""What the fake upstream does with the n-th request for a model: scripts, profiles, and the pure decision.

A `Script` is the JSON a test posts to `/_fake/script` (or the CLI flags build at start):

    {"model": "m1", "fail": [429, 429], "retry_after": 1}     the next two requests get 429
    {"model": "m1", "status": 500, "times": 3}                 three 500s, then normal answers
    {"model": "*", "latency_ms": 20, "ttft_ms": 5}             default for every model
    {"model": "m1", "reset": true}                             close the connection, no response
    {"model": "m1", "malformed": true}                         200 with a body that is not JSON
    {"model": "m1", "stall_after_chunks": 2}                   stream stalls after 2 frames
    {"model": "m1", "die_after_chunks": 2}                     stream connection drops after 2 frames
    {"model": "m1", "flap": 5}                                 5 requests up, 5 down (503), ...
    {"model": "m1", "error_message": "maximum context length exceeded", "fail": [400]}
    {"model": "m1", "reply": "fixed text"}                     answer text instead of the echo
    {"model": "m1", "tool_call": false}                        never answer with a tool call

Hostile replies (an upstream we must not trust; each is a failure mode bounded by `times`):

    {"model": "m1", "raw_reply": "{...}"}                      200 with exactly this body (not streams)
    {"model": "m1", "raw_frames": ["data: {...}\n\n", ...]}    streams: exactly these frames, then end
    {"model": "m1", "raw_frames": [...], "tail_frame": ": ping\n\n", "tail_every_ms": 50}
                                                               then repeat tail_frame until the client leaves
    {"model": "m1", "huge_bytes": 8388608}                     200 whose body (or one stream line) is this
                                                               big, chunked; stats()["sent_bytes"] says how
                                                               much went out before the client dropped it
    {"model": "m1", "raw_reply": "{...}", "cut_after_bytes": 10}  chunked reply cut (connection reset) there

`times` bounds the failure modes (status/reset/malformed/stall/die); absent means "always".
`decide` is pure: the request number and a uniform draw come in, an `Action` comes out.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields, replace
from statistics import NormalDist
from typing import Any

__all__ = ["PROFILES", "Action", "Profile", "Script", "ScriptBook", "decide"]


_NORMAL = NormalDist()


@dataclass(frozen=True, slots=True)
class Profile:
    """Latency shape of a simulated upstream: lognormal TTFT around a median, then steady token rate."""

    ttft_median_ms: float = 0.0
    ttft_sigma: float = 0.0  # lognormal shape; 0 = always the median
    tokens_per_s: float = 0.0  # 0 = as fast as possible
    reply_words: int = 0  # pad answers to at least this many words (a realistic output length)


PROFILES: dict[str, Profile] = {
    "instant": Profile(),
    "local": Profile(ttft_median_ms=60, ttft_sigma=0.3, tokens_per_s=45, reply_words=60),
    "edge": Profile(ttft_median_ms=180, ttft_sigma=0.35, tokens_per_s=350, reply_words=120),
    "frontier": Profile(ttft_median_ms=650, ttft_sigma=0.45, tokens_per_s=70, reply_words=180),
}


@dataclass(slots=True)
class Script:
    model: str = "*"
    fail: list[int] = field(default_factory=list)
    status: int | None = None
    times: int | None = None
    retry_after: float | None = None
    error_message: str | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    reply_words: int | None = None
    profile: str | None = None
    stall_after_chunks: int | None = None
    die_after_chunks: int | None = None
    malformed: bool = False
    reset: bool = False
    flap: int | None = None
    reply: str | None = None
    tool_call: bool = True
    raw_reply: str | None = None
    raw_frames: list[str] | None = None
    tail_frame: str | None = None
    tail_every_ms: float = 50.0
    huge_bytes: int | None = None
    cut_after_bytes: int | None = None

    @property
    def hostile(self) -> bool:
        return (self.raw_reply is not None or self.raw_frames is not None or self.tail_frame is not None
                or self.huge_bytes is not None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Script:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown script keys: {', '.join(sorted(unknown))}")
        s = cls(**data)
        if s.profile is not None and s.profile not in PROFILES:
            raise ValueError(f"unknown profile '{s.profile}'; use one of {', '.join(PROFILES)}")
        if not all(isinstance(x, int) and 100 <= x <= 599 for x in s.fail):
            raise ValueError("fail must be a list of HTTP statuses")
        if s.status is not None and not 100 <= s.status <= 599:
            raise ValueError("status must be an HTTP status")
        if s.flap is not None and s.flap < 1:
            raise ValueError("flap must be >= 1")
        if s.raw_frames is not None and not all(isinstance(f, str) for f in s.raw_frames):
            raise ValueError("raw_frames must be a list of strings")
        if s.tail_every_ms <= 0:
            raise ValueError("tail_every_ms must be > 0")
        if s.huge_bytes is not None and not 0 < s.huge_bytes <= 1 << 30:
            raise ValueError("huge_bytes must be in (0, 1 GiB]")
        return s

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Action:
    """What to do with one request. kind: "ok" | "status" | "reset" | "malformed" | "hostile"."""

    kind: str = "ok"
    status: int = 200
    retry_after: float | None = None
    error_message: str | None = None
    delay_s: float = 0.0  # before anything is sent
    ttft_s: float = 0.0  # streams: before the first frame
    tokens_per_s: float = 0.0
    reply_words: int = 0
    stall_after: int | None = None
    die_after: int | None = None
    reply: str | None = None
    tool_call: bool = True
    # kind "hostile": see the Script keys of the same names
    raw_reply: str | None = None
    raw_frames: tuple[str, ...] | None = None
    tail_frame: str | None = None
    tail_every_s: float = 0.05
    huge_bytes: int | None = None
    cut_after_bytes: int | None = None


def _lognormal_ms(median: float, sigma: float, u: float) -> float:
    """Inverse-CDF draw (u in (0,1)) so the caller owns the randomness."""
    if median <= 0:
        return 0.0
    if sigma <= 0:
        return median
    z = _NORMAL.inv_cdf(min(max(u, 1e-9), 1 - 1e-9))
    return median * math.exp(sigma * z)


def decide(script: Script, n: int, used: int, u: float) -> tuple[Action, bool]:
    """The action for request number `n` (0-based) of a model; `used` failure-mode uses so far.

    Returns (action, consumed): `consumed` says the script's bounded failure mode was spent, so
    the caller increments its `used` counter. `fail` entries are consumed by popping them first.
    """
    prof = PROFILES[script.profile] if script.profile else PROFILES["instant"]
    ttft_ms = script.ttft_ms if script.ttft_ms is not None else _lognormal_ms(
        prof.ttft_median_ms, prof.ttft_sigma, u)
    base = Action(
        delay_s=script.latency_ms / 1000,
        ttft_s=ttft_ms / 1000,
        tokens_per_s=script.tokens_per_s if script.tokens_per_s is not None else prof.tokens_per_s,
        reply_words=script.reply_words if script.reply_words is not None else prof.reply_words,
        reply=script.reply,
        tool_call=script.tool_call,
        retry_after=script.retry_after,
        error_message=script.error_message,
    )
    if script.flap and (n // script.flap) % 2 == 1:
        return replace(base, kind="status", status=503), False
    active = script.times is None or used < script.times
    if not active:
        return base, False
    if script.reset:
        return replace(base, kind="reset"), True
    if script.status is not None and script.status >= 400:
        return replace(base, kind="status", status=script.status), True
    if script.malformed:
        return replace(base, kind="malformed"), True
    if script.hostile:
        return replace(base, kind="hostile", raw_reply=script.raw_reply,
                       raw_frames=None if script.raw_frames is None else tuple(script.raw_frames),
                       tail_frame=script.tail_frame, tail_every_s=script.tail_every_ms / 1000,
                       huge_bytes=script.huge_bytes, cut_after_bytes=script.cut_after_bytes), True
    if script.stall_after_chunks is not None or script.die_after_chunks is not None:
        return replace(base, stall_after=script.stall_after_chunks, die_after=script.die_after_chunks), True
    return base, False


class ScriptBook:
    """Thread-safe scripts and counters: tests script from their thread, the server reads from its loop."""

    def __init__(self, default: Script | None = None, history: int = 50) -> None:
        self._lock = threading.Lock()
        self._default = default or Script()
        self._scripts: dict[str, Script] = {}
        self._n: Counter[str] = Counter()
        self._used: Counter[str] = Counter()
        self._by_path: Counter[tuple[str, str]] = Counter()
        self._last: deque[dict[str, Any]] = deque(maxlen=history)
        self._sent: Counter[str] = Counter()
        self.models_seen: set[str] = set()

    def note_sent(self, model: str, n: int) -> None:
        """Bytes of a hostile reply that went out before the client dropped the connection."""
        with self._lock:
            self._sent[model] += n

    def set(self, script: Script) -> None:
        with self._lock:
            if script.model == "*":
                self._default = script
            else:
                self._scripts[script.model] = script
            self._used.pop(script.model, None)
            self._n.pop(script.model, None)

    def clear(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._default = Script()
            self._n.clear()
            self._used.clear()
            self._by_path.clear()
            self._last.clear()
            self._sent.clear()
            self.models_seen.clear()

    def next_action(self, model: str, path: str, record: dict[str, Any], u: float) -> Action:
        with self._lock:
            script = self._scripts.get(model, self._default)
            key = script.model if script.model in self._scripts else "*"
            n = self._n[model]
            self._n[model] += 1
            self._by_path[(model, path)] += 1
            self.models_seen.add(model)
            self._last.append(record)
            if script.fail:
                status = script.fail.pop(0)
                base, _ = decide(script, n, 0, u)
                return replace(base, kind="status", status=status, stall_after=None, die_after=None)
            action, consumed = decide(script, n, self._used[key], u)
            if consumed:
                self._used[key] += 1
            return action

    def stats(self) -> dict[str, Any]:
        with self._lock:
            by_model: dict[str, dict[str, int]] = {}
            for (m, p), c in self._by_path.items():
                by_model.setdefault(m, {})[p] = c
            by_path: Counter[str] = Counter()
            for (_, p), c in self._by_path.items():
                by_path[p] += c
            return {
                "total": sum(self._n.values()),
                "by_model": {m: sum(d.values()) for m, d in by_model.items()},
                "by_path": dict(by_path),
                "by_model_path": by_model,
                "last": list(self._last),
                "sent_bytes": dict(self._sent),
                "scripts": {k: v.as_json() for k, v in self._scripts.items()} | {"*": self._default.as_json()},
            }
