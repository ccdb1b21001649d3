"""Insight hook settings: the shared `Settings` (env prefix WILTON_) plus WILTON_INSIGHT_* knobs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from wilton_core.insight.backends import DEFAULT_GEMINI_MODEL, DEFAULT_OPENAI_MODEL
from wilton_core.settings import Settings, load_settings_as

__all__ = ["InsightSettings", "load_insight_settings"]


class InsightSettings(Settings):
    insight_interval_s: float = Field(default=3600.0, gt=0)
    # the first report waits: at start the only llama.cpp slot is for the user's first requests
    insight_first_delay_s: float = Field(default=300.0, ge=0, le=7 * 24 * 3600)
    insight_model: Literal["openai", "gemini", "local"] | None = Field(
        default=None, description="None: local when no OPENAI_API_KEY/GEMINI_KEY/GOOGLE_API_KEY, else openai"
    )
    insight_openai_model: str = DEFAULT_OPENAI_MODEL
    insight_gemini_model: str = DEFAULT_GEMINI_MODEL
    insight_history_hours: float = Field(default=24.0, gt=0, le=24 * 90)
    insight_max_tasks: int = Field(default=10, ge=0, le=1000)
    insight_token_budget: int = Field(default=4000, ge=512, le=1_000_000)
    insight_include_prompts: bool = False


# the flags of `wilton-insight` that set these fields, named in a settings error
_FLAGS = {"insight_interval_s": "--interval", "insight_first_delay_s": "--first-delay", "insight_model": "--model",
          "insight_history_hours": "--history", "insight_max_tasks": "--max-tasks",
          "insight_token_budget": "--token-budget", "insight_include_prompts": "--include-prompts",
          "config": "--config", "store_url": "--store-url", "reports_dir": "--reports-dir"}


def load_insight_settings(**overrides: Any) -> InsightSettings:
    return load_settings_as(InsightSettings, flags=_FLAGS, **overrides)
