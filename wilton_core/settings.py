"""Process settings: one typed object fed by the environment (prefix WILTON_) and CLI flags.

The config file (models, routing) is separate and loaded from `config_path`; this object says
where things are (store, ports, directories) and is shared by every process.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from wilton_core.config import StackConfig, default_config, load_config
from wilton_core.errors import ConfigError

__all__ = ["Settings", "load_settings", "load_settings_as"]


class Settings(BaseSettings):
    # env_ignore_empty: compose passes optional variables as `${X:-}`, i.e. "": empty means unset
    model_config = SettingsConfigDict(env_prefix="WILTON_", extra="ignore", frozen=True, env_ignore_empty=True)

    config: Path | None = Field(default=None, description="TOML config file (WILTON_CONFIG)")
    store_url: str | None = Field(default=None, description="sqlite:///path or postgresql://...")
    data_dir: Path = Path("./data")
    reports_dir: Path = Path("./reports")
    run_dir: Path = Field(default=Path("./run"), description="pid files and logs of scripts/up.sh")
    host: str = "127.0.0.1"
    router_port: int = Field(default=8080, ge=0, le=65535)
    router_workers: int = Field(default=1, ge=1, le=64, description="router processes sharing the port")
    router_siblings: int = Field(default=1, ge=1, le=64, description=(
        "set by `--workers N` for each of its workers (WILTON_ROUTER_SIBLINGS=N): per-process caps such as "
        "the shadow judging budget are divided by it"))
    # the router's limits against hostile or broken clients, per worker (docs/reliability.md,
    # "Server limits")
    router_max_header_bytes: int = Field(default=16384, ge=8192, le=1 << 20,
                                         description="request line + headers; above it: 431")
    router_max_headers: int = Field(default=100, ge=8, le=100, description="header count; above it: 431")
    router_header_timeout_s: float = Field(default=10.0, gt=0, le=60, description=(
        "time to receive a request's line and headers"))
    router_body_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                         description="time to receive a request's whole body (a streamed, chunked "
                                                     "upload: the longest silence between chunks); then 408")
    router_keep_alive_s: float = Field(default=5.0, gt=0, le=600, description=(
        "an idle connection is closed after"))
    router_max_connections: int = Field(default=1000, ge=1, le=100_000, description=(
        "open connections per worker; more are refused with 503"))
    exporter_port: int = Field(default=8000, ge=0, le=65535)
    coherence_port: int = Field(default=8001, ge=0, le=65535)
    router_url: str | None = None
    coherence_url: str | None = None
    replica_id: str = Field(default_factory=socket.gethostname)
    ledger_flush_s: float = Field(default=0.2, gt=0)
    ledger_batch: int = Field(default=500, gt=0)
    log_level: str = "info"
    capture_prompts: bool = Field(default=False, description="store prompt text for insight --include-prompts")
    upstream_http: Literal["auto", "httpx"] = Field(default="auto", description=(
        "httpx: every upstream through httpx (escape hatch, benchmark A/B); auto: plain-http "
        "OpenAI-compatible upstreams through the lean keep-alive client"))
    # -- access (issue 14, docs/access.md) --
    master_key: SecretStr | None = Field(default=None, description="admin client key of the router")
    redis_url: str | None = Field(default=None, description="redis://... shared RPM/TPM limits across replicas")
    key_refresh_s: float = Field(default=1.0, gt=0, le=30, description="how often keys and spend are re-read")
    allow_unauthenticated: bool = Field(default=False, description="serve a non-loopback address without keys")
    admin_password: SecretStr | None = Field(default=None, description=(
        "the coherence API's admin password; unset: generated at first start and printed once"))
    router_api_key: SecretStr | None = Field(default=None, description=(
        "the client key wiltonctl, the hpc runner and the insight hook send to the router"))
    local_port: int = Field(default=8081, ge=1, le=65535, description=(
        "port of the embedded llama.cpp server (scripts/start_local_model.sh)"))
    local_model: str = Field(default="smollm2", min_length=1, max_length=200, description=(
        "the name the embedded llama.cpp server serves its model as"))
    demo_port: int = Field(default=8090, ge=1, le=65535, description="port of the --demo fake upstream")

    @field_validator("store_url")
    @classmethod
    def _store_scheme(cls, v: str | None) -> str | None:
        if v and not v.startswith(("sqlite://", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return v

    @field_validator("master_key")
    @classmethod
    def _master_key_strength(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value():
            return None
        text = v.get_secret_value()
        if len(text) < 16 or text.lower() in {"changeme" * 2, "change-me-please", "0123456789abcdef"}:
            raise ValueError("must be at least 16 random characters (e.g. `openssl rand -hex 24`)")
        return v

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, v: str | None) -> str | None:
        if v and not v.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return v or None

    def master_key_value(self) -> str | None:
        return self.master_key.get_secret_value() if self.master_key else None

    def admin_password_value(self) -> str | None:
        return self.admin_password.get_secret_value() or None if self.admin_password else None

    def router_api_key_value(self) -> str | None:
        return self.router_api_key.get_secret_value() or None if self.router_api_key else None

    def resolved_store_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'wilton.db').resolve()}"

    def resolved_router_url(self) -> str:
        return self.router_url or f"http://127.0.0.1:{self.router_port}"

    def resolved_coherence_url(self) -> str:
        return self.coherence_url or f"http://127.0.0.1:{self.coherence_port}"

    def stack_config(self) -> StackConfig:
        return load_config(self.config) if self.config else default_config()


S = TypeVar("S", bound=Settings)


def load_settings(**overrides: Any) -> Settings:
    """Settings from env, with CLI flags (non-None overrides) on top; readable error on failure."""
    return load_settings_as(Settings, **overrides)


def load_settings_as(cls: type[S], *, flags: Mapping[str, str] | None = None, **overrides: Any) -> S:
    """An instance of `cls` (Settings or a process's subclass of it) from env, with the non-None
    overrides (CLI flags) on top. A ValidationError becomes one ConfigError naming each bad
    variable, and the flag that sets it when `flags` maps the field name to one."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return cls(**clean)
    except ValidationError as err:
        names = flags or {}
        parts = []
        for e in err.errors():
            key = "_".join(str(p) for p in e["loc"])
            env = f"WILTON_{key.upper()}"
            parts.append(f"{names[key]} ({env}): {e['msg']}" if key in names else f"{env}: {e['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(parts)) from None
