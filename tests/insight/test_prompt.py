"""Prompt building, trimming to a token budget, and redaction."""

from __future__ import annotations

import json

from wilton_core.insight.prompt import SYSTEM_PROMPT, build_prompt, estimate_tokens, split_budget
from wilton_core.insight.redact import MASK, Redactor
from wilton_core.insight.stats import (
    ControlColumns,
    InsightStats,
)

from .ledger_oracle import LEDGER_COLUMNS, LedgerColumns, compute_stats

T0 = 1_700_000_000.0


def stats(hours: int = 24) -> InsightStats:
    n = hours * 60
    cols = {
        "ts": [T0 + 60 * i for i in range(n)], "request_id": [f"req-{i}" for i in range(n)],
        "model_id": ["gpt-4o" if i % 4 == 3 else "local-small" for i in range(n)],
        "tier": ["frontier" if i % 4 == 3 else "selfhost" for i in range(n)],
        "is_local": [i % 4 != 3 for i in range(n)], "provider": ["openai"] * n,
        "latency_s": [0.5 + (i % 7) / 10 for i in range(n)], "tokens_in": [100] * n, "tokens_out": [20] * n,
        "cost_usd": [0.001 * (i % 4 == 3) * i for i in range(n)],
        "status": ["error" if i % 50 == 0 else "ok" for i in range(n)],
        "error_class": ["rate_limited" if i % 50 == 0 else None for i in range(n)], "fallbacks": [0] * n,
    }
    assert set(cols) == set(LEDGER_COLUMNS)
    return compute_stats(LedgerColumns.from_mapping(cols), ControlColumns.from_rows([]), since=T0,
                         until=T0 + hours * 3600, phi_target=0.75, latency_target_s=2.0, max_tasks=10)


def test_split_budget() -> None:
    assert split_budget(4000) == (3000, 1000)
    assert split_budget(600) == (450, 150)
    assert split_budget(400) == (272, 128)
    assert split_budget(100_000) == (97_952, 2048)


def test_a_generous_budget_sends_everything_as_json() -> None:
    st = stats()
    p = build_prompt(st, token_budget=100_000)
    assert p.system == SYSTEM_PROMPT and p.fits and p.trimmed == []
    digest = json.loads(p.user.split("\n")[1])
    assert digest["totals"]["requests"] == 24 * 60 and len(digest["costliest"]) == 10
    assert len(digest["phi"]["trajectory"]) == 24 and "prompt_excerpts" not in digest


def test_trimming_drops_detail_in_order_and_says_so() -> None:
    st = stats()
    full = build_prompt(st, token_budget=100_000)
    tight = build_prompt(st, token_budget=full.prompt_tokens_est)  # 3/4 of what the full prompt needs
    assert tight.fits and tight.trimmed
    assert tight.prompt_tokens_est <= split_budget(full.prompt_tokens_est)[0]
    assert "Left out to fit the token budget: " + "; ".join(tight.trimmed) in tight.user
    assert estimate_tokens(tight.system) + estimate_tokens(tight.user) == tight.prompt_tokens_est
    hopeless = build_prompt(st, token_budget=512)
    assert not hopeless.fits and "rate-limit episodes" in hopeless.trimmed


def test_prompts_only_when_given_and_trimmed_first() -> None:
    st = stats()
    p = build_prompt(st, token_budget=100_000, prompts={"req-3": "x" * 5000})
    excerpts = json.loads(p.user.split("\n")[1])["prompt_excerpts"]
    assert len(excerpts["req-3"]) == 2000
    small = build_prompt(st, token_budget=4000, prompts={"req-3": "x" * 5000})
    assert small.trimmed[:2] == ["prompt excerpts shortened to 300 characters", "prompt excerpts"]


def test_redactor_masks_env_values_and_key_patterns() -> None:
    r = Redactor.from_env({"OPENAI_API_KEY": "plain-secret-value", "MY_SERVICE_TOKEN": "tok-1234567890",
                           "SHORT_API_KEY": "abc", "HOME": "/root"}, extra_names=["CUSTOM_KEY_ENV"])
    text = ("a plain-secret-value b tok-1234567890 c sk-proj-abcdefghijklmnopqrstuv "
            "AIzaSyA1234567890abcdefghijklmnopqrstu Bearer abcdefghijklmnopqrstu /root abc")
    out = r(text)
    assert out.count(MASK) == 5 and out.endswith("/root abc")
    assert Redactor.from_env({"CUSTOM_KEY_ENV": "custom-secret-1"}, ["CUSTOM_KEY_ENV"])("x custom-secret-1") == f"x {MASK}"
    p = build_prompt(stats(1), token_budget=100_000, prompts={"req-1": "my key plain-secret-value"}, redact=r)
    assert "plain-secret-value" not in p.user and MASK in p.user
