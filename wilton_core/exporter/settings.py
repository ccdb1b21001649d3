"""The exporter's settings: the shared `Settings` plus what only the exporter needs."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field, field_validator

from wilton_core.exporter.families import ExportOptions
from wilton_core.settings import Settings, load_settings_as

__all__ = ["ExporterSettings", "load_exporter_settings"]


class ExporterSettings(Settings):
    api_budget_usd_per_hour: float | None = Field(
        default=None, ge=0, description="hourly API spend budget for the alert (WILTON_API_BUDGET_USD_PER_HOUR)"
    )
    exporter_window_s: float | None = Field(
        default=None, gt=0, description="phi window; defaults to routing.window_s of the config"
    )

    @field_validator("api_budget_usd_per_hour")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    def export_options(self) -> ExportOptions:
        cfg = self.stack_config()
        return ExportOptions(
            latency_targets=cfg.latency_targets.as_dict(),
            phi_target_default=cfg.routing.phi_target,
            window_s=self.exporter_window_s or cfg.routing.window_s,
            api_budget_usd_per_hour=self.api_budget_usd_per_hour,
        )


def load_exporter_settings(**overrides: Any) -> ExporterSettings:
    return load_settings_as(ExporterSettings, **overrides)
