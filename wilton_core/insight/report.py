"""The report: measured numbers and the model's words, kept apart, as Markdown and JSON.

`InsightReport` is the one record of a run; `render_markdown` and `to_json` are pure, and
`write_files` puts `insight-<UTC stamp>.md/.json` in the reports directory.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["InsightReport", "render_markdown", "report_id", "utc_iso", "write_files"]


def utc_iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def report_id(ts: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(ts))


@dataclass(slots=True)
class InsightReport:
    id: str
    created_at: float
    since: float
    until: float
    status: str                        # "ok" | "stats_only"
    reason: str | None                 # why stats-only (never a secret: redacted)
    backend: str                       # openai | gemini | local
    model: str | None                  # the model that wrote the analysis, as the upstream named it
    stats: dict[str, Any]
    analysis: str | None = None        # the model's words, redacted
    prompt_tokens: int = 0
    completion_tokens: int = 0
    token_budget: int = 0
    trimmed: list[str] = field(default_factory=list)
    include_prompts: bool = False
    prompt_excerpts: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InsightReport:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, fmt: str = ".3f") -> str:
    return "n/a" if x is None else format(x, fmt)


def _dur(s: float) -> str:
    m, sec = divmod(round(s), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def _numbers_section(s: dict[str, Any]) -> list[str]:
    t, phi, ctl = s["totals"], s["phi"], s["controller"]
    lines = ["## Numbers (measured)", ""]
    lines += [
        f"- Requests: {t['requests']} ({t['local_requests']} local), tokens: {t['tokens']}, "
        f"cost: ${t['cost_usd']:.4f}, errors: {t['errors']} ({_pct(t['error_rate'])})",
        f"- phi ({phi['basis']}): measured {_num(phi['measured'])} against target {phi['target']:.2f}; "
        f"off target (|phi - target| > 0.02) for {_dur(phi['off_target_s'])} of {_dur(phi['observed_s'])} "
        f"observed ({_pct(phi['off_target_share'])}, from {phi['source']})",
        f"- Controller: {ctl['steps']} steps, threshold {_num(ctl['threshold_min'])}–{_num(ctl['threshold_max'])} "
        f"(last {_num(ctl['threshold_last'])}), mean |error| {_num(ctl['mean_abs_error'])}",
        "",
    ]
    traj = [p for p in phi["trajectory"] if p["requests"]]
    if traj:
        lines += ["### phi trajectory", ""]
        lines += _table(["from (UTC)", "phi", "requests"],
                        [[utc_iso(p["start"]), _num(p["phi"]), str(p["requests"])] for p in traj])
    if s["tiers"]:
        lines += ["### Tiers", ""]
        lines += _table(["tier", "requests", "tokens", "cost"],
                        [[x["tier"], f"{x['requests']} ({_pct(x['requests_share'])})",
                          f"{x['tokens']} ({_pct(x['tokens_share'])})",
                          f"${x['cost_usd']:.4f} ({_pct(x['cost_share'])})"] for x in s["tiers"]])
    if s["latency"]:
        lines += [f"### Latency against the LLM target ({s['latency_target_s']:.2f} s)", ""]
        lines += _table(["model", "ok requests", "p50 s", "p95 s", "over target", "meets target"],
                        [[x["model_id"], str(x["requests"]), _num(x["p50_s"]), _num(x["p95_s"]),
                          _pct(x["over_target_share"]), "yes" if x["meets_target"] else "**no**"]
                         for x in s["latency"]])
    if s["providers"]:
        lines += ["### Errors and fallbacks by provider", ""]
        lines += _table(["provider", "requests", "error rate", "fallback rate", "error classes"],
                        [[x["provider"], str(x["requests"]), _pct(x["error_rate"]), _pct(x["fallback_rate"]),
                          ", ".join(f"{k}: {v}" for k, v in sorted(x["error_classes"].items())) or "-"]
                         for x in s["providers"]])
    if s.get("keys"):
        lines += ["### Client keys", ""]
        lines += _table(["key", "requests", "refused", "local-only", "tokens", "cost", "budget"],
                        [[k["name"], str(k["requests"]), str(k["refused"]), str(k["local_only"]), str(k["tokens"]),
                          f"${k['cost_usd']:.4f}",
                          "-" if k["budget_usd"] is None else f"${k['budget_usd']:.2f} / {k['budget_period']}"]
                         for k in s["keys"]])
    lines += ["### Rate-limit episodes", ""]
    if s["rate_limit_episodes"]:
        lines += _table(["provider", "start (UTC)", "end (UTC)", "errors"],
                        [[e["provider"], utc_iso(e["start"]), utc_iso(e["end"]), str(e["count"])]
                         for e in s["rate_limit_episodes"]])
    else:
        lines += ["None.", ""]
    if s["costliest"]:
        lines += ["### Costliest requests", ""]
        lines += _table(["request id", "time (UTC)", "model", "cost", "tokens in/out"],
                        [[c["request_id"], utc_iso(c["ts"]), c["model_id"], f"${c['cost_usd']:.4f}",
                          f"{c['tokens_in']}/{c['tokens_out']}"] for c in s["costliest"]])
    lines += ["### Anomalies (rolling z-score per minute)", ""]
    if s["anomalies"]:
        lines += _table(["time (UTC)", "metric", "value", "baseline", "z"],
                        [[utc_iso(a["ts"]), a["metric"], _num(a["value"]), _num(a["baseline"]),
                          f"{a['zscore']:.1f}"] for a in s["anomalies"]])
    else:
        lines += ["None.", ""]
    for note in s.get("notes", []):
        lines.append(f"> {note}")
    return lines


def render_markdown(r: InsightReport) -> str:
    who = f"{r.model} via {r.backend}" if r.model else r.backend
    lines = [
        f"# Insight report {utc_iso(r.created_at)}",
        "",
        f"Window: {utc_iso(r.since)} → {utc_iso(r.until)} ({(r.until - r.since) / 3600:.1f} h) · "
        f"status: **{r.status}** · report id: `{r.id}`",
        "",
    ]
    if r.status != "ok":
        lines += [f"> **Statistics only** — the analysis model ({r.backend}) was not used: {r.reason}", ""]
    lines += _numbers_section(r.stats)
    if r.analysis:
        lines += [
            "",
            f"## Analysis (written by {who}; the model's words, not measurements)",
            "",
            f"<!-- tokens: prompt {r.prompt_tokens}, completion {r.completion_tokens}, budget {r.token_budget} -->",
        ]
        if r.trimmed:
            lines += [f"_Detail left out of the model's prompt to fit the budget: {'; '.join(r.trimmed)}._", ""]
        lines += ["", r.analysis.strip(), ""]
    if r.include_prompts and r.prompt_excerpts:
        lines += ["## Prompt excerpts (--include-prompts)", ""]
        for rid, text in r.prompt_excerpts.items():
            lines += [f"- `{rid}`: {text[:300]!r}"]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_files(r: InsightReport, reports_dir: Path) -> tuple[Path, Path]:
    """Write both files atomically (temp + rename), so a reader never sees half a report."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    md, js = reports_dir / f"insight-{r.id}.md", reports_dir / f"insight-{r.id}.json"
    for path, text in ((md, render_markdown(r)), (js, r.to_json())):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return md, js
