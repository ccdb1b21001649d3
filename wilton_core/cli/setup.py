"""`wiltonctl setup`: the setup wizard (seed 002, step 5) — hardware, providers, tests, config.

Steps: detect hardware and propose local models; configure Ollama (host + a model per intent),
an OpenAI-compatible server (llama.cpp, vLLM: base URL + model), and API keys for Groq, Gemini,
OpenAI and Anthropic; test every configured model through the registry; show the routing table
per intent and tier; write the config TOML (validated by `parse_config` first) and the keys to a
separate 0600 env file. The config names each key's variable (`api_key_env`), never its value.

Every question has a flag, so CI runs it with `--yes`. Keys are never taken from argv (they would
land in shell history and `ps`): non-interactively they come from the environment variable named
by `--<provider>-key-env`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wilton_core.config import GEMINI_KEY_ENVS, StackConfig, parse_config
from wilton_core.errors import ConfigError, WiltonError
from wilton_core.hardware import HardwareProfile, detect_hardware
from wilton_core.registry.envfile import DEFAULT_ENV_FILE, read_env_file, write_env_file
from wilton_core.registry.preview import INTENTS, TIERS, routing_preview
from wilton_core.registry.registry import ModelRegistry, ProbeResult

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "API_PROVIDERS",
    "PROVIDER_CHOICES",
    "ApiProvider",
    "WizardAnswers",
    "build_config",
    "chat_choice",
    "dump_toml",
    "main",
    "register",
    "setup_command",
]

DEFAULT_CONFIG_FILE = Path("wilton.toml")
DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
PROVIDER_CHOICES: tuple[str, ...] = ("ollama", "server", "groq", "gemini", "openai", "anthropic")


@dataclass(frozen=True, slots=True)
class ApiProvider:
    name: str
    label: str
    key_env: str
    key_hint: str
    provider: str
    base_url: str | None
    models: tuple[dict[str, Any], ...]


API_PROVIDERS: dict[str, ApiProvider] = {
    p.name: p for p in (
        ApiProvider("groq", "Groq (free tier, very fast)", "GROQ_API_KEY", "console.groq.com/keys", "openai",
                    "https://api.groq.com/openai/v1", (
                        dict(id="groq-llama-8b", model="llama-3.1-8b-instant", tier="edge",
                             capability="standard", context_window=131072, input_cost_per_mtok=0.05,
                             output_cost_per_mtok=0.08, supports_tools=True),
                        dict(id="groq-llama-70b", model="llama-3.3-70b-versatile", tier="edge",
                             capability="advanced", context_window=131072, input_cost_per_mtok=0.59,
                             output_cost_per_mtok=0.79, supports_tools=True),
                    )),
        ApiProvider("gemini", "Google Gemini (free tier, 1M context)", "GEMINI_API_KEY",
                    "aistudio.google.com/apikey", "gemini", None, (
                        dict(id="gemini-flash-lite", model="gemini-2.5-flash-lite", tier="edge",
                             capability="standard", context_window=1048576, input_cost_per_mtok=0.10,
                             output_cost_per_mtok=0.40, supports_tools=True, supports_vision=True),
                        dict(id="gemini-flash", model="gemini-2.5-flash", tier="edge",
                             capability="advanced", context_window=1048576, input_cost_per_mtok=0.30,
                             output_cost_per_mtok=2.50, supports_tools=True, supports_vision=True),
                    )),
        ApiProvider("openai", "OpenAI", "OPENAI_API_KEY", "platform.openai.com/api-keys", "openai", None, (
            dict(id="gpt-4o-mini", model="gpt-4o-mini", tier="edge", capability="standard",
                 context_window=128000, input_cost_per_mtok=0.15, output_cost_per_mtok=0.60,
                 supports_tools=True, supports_vision=True),
            dict(id="gpt-4o", model="gpt-4o", tier="frontier", capability="advanced", context_window=128000,
                 input_cost_per_mtok=2.5, output_cost_per_mtok=10.0, supports_tools=True,
                 supports_vision=True),
        )),
        ApiProvider("anthropic", "Anthropic Claude", "ANTHROPIC_API_KEY", "console.anthropic.com",
                    "anthropic", None, (
                        dict(id="claude-sonnet", model="claude-sonnet-4-5", tier="frontier",
                             capability="advanced", context_window=200000, input_cost_per_mtok=3.0,
                             output_cost_per_mtok=15.0, supports_tools=True, supports_vision=True),
                    )),
    )
}


@dataclass(slots=True)
class WizardAnswers:
    """Everything the wizard asks; `build_config` turns it into a config with no I/O."""

    ollama_host: str | None = None
    ollama_models: dict[str, str] = field(default_factory=dict)       # intent -> ollama model name
    server_base_url: str | None = None
    server_model: str | None = None
    api: dict[str, str | list[str]] = field(default_factory=dict)     # provider -> key env name(s)
    api_base_urls: dict[str, str] = field(default_factory=dict)       # provider -> endpoint override


_OLLAMA_ROLES: dict[str, dict[str, Any]] = {
    "chat": dict(capability="standard", supports_tools=True),
    "code": dict(capability="standard", supports_tools=True),
    "vision": dict(capability="basic", supports_vision=True),
}


def build_config(a: WizardAnswers) -> tuple[dict[str, Any], StackConfig]:
    """The raw TOML document and the validated config; ConfigError if they do not validate."""
    models: list[dict[str, Any]] = []
    intent_defaults: dict[str, str] = {}
    if a.ollama_host:
        by_name: dict[str, str] = {}
        for intent in ("chat", "code", "vision"):
            name = a.ollama_models.get(intent)
            if not name:
                continue
            if name in by_name:
                # One model serving two intents is one routable model, not two ids for one upstream.
                intent_defaults[intent] = by_name[name]
                continue
            mid = f"ollama-{intent}"
            by_name[name] = mid
            models.append(dict(id=mid, provider="ollama", model=name, base_url=a.ollama_host,
                               tier="selfhost", is_local=True, context_window=8192, **_OLLAMA_ROLES[intent]))
            intent_defaults[intent] = mid
        if "chat" in intent_defaults:
            intent_defaults.setdefault("system", intent_defaults["chat"])
    if a.server_base_url and a.server_model:
        models.append(dict(id="local-server", provider="openai", model=a.server_model,
                           base_url=a.server_base_url, tier="selfhost", is_local=True, capability="basic",
                           context_window=4096, timeout_s=60.0))
        intent_defaults.setdefault("chat", "local-server")
        intent_defaults.setdefault("system", "local-server")
    for name in PROVIDER_CHOICES:
        if name not in a.api:
            continue
        spec = API_PROVIDERS[name]
        base_url = a.api_base_urls.get(name, spec.base_url)
        for m in spec.models:
            d = {"id": m["id"], "provider": spec.provider, "model": m["model"], "api_key_env": a.api[name],
                 "is_local": False, **{k: v for k, v in m.items() if k not in ("id", "model")}}
            if base_url:
                d["base_url"] = base_url
            models.append(d)
    raw: dict[str, Any] = {"routing": {"intent_defaults": intent_defaults}, "models": models}
    return raw, parse_config(raw, "setup wizard")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("TOML cannot hold a non-finite float here")
        return repr(v)
    if isinstance(v, str):
        # A JSON string with ASCII escapes is a valid TOML basic string.
        return json.dumps(v, ensure_ascii=True)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_key(k: str) -> str:
    return k if k and all(c.isascii() and (c.isalnum() or c in "_-") for c in k) else json.dumps(k)


def dump_toml(doc: Mapping[str, Any]) -> str:
    """The small TOML subset the config needs: scalars, lists, tables, arrays of tables."""
    lines: list[str] = []

    def table(prefix: str, d: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if (v is not None and not isinstance(v, dict | list))
                   or (isinstance(v, list) and not any(isinstance(x, dict) for x in v))}
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in d.items():
            if isinstance(v, dict):
                lines.append("")
                lines.append(f"[{prefix}{_toml_key(k)}]")
                table(f"{prefix}{_toml_key(k)}.", v)
            elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
                for item in v:
                    lines.append("")
                    lines.append(f"[[{prefix}{_toml_key(k)}]]")
                    table(f"{prefix}{_toml_key(k)}.", item)

    table("", doc)
    return "\n".join(lines).lstrip("\n") + "\n"


# ---------------------------------------------------------------------------------- the I/O shell


class _Asker:
    """Prompts when interactive; with --yes every question takes its default."""

    def __init__(self, interactive: bool, console: Console) -> None:
        self.interactive = interactive
        self.console = console

    def confirm(self, question: str, default: bool) -> bool:
        if not self.interactive:
            return default
        return bool(typer.confirm(question, default=default))

    def text(self, question: str, default: str | None) -> str:
        if not self.interactive:
            if default is None:
                raise ConfigError(f"setup: no value for '{question}' (give the matching flag)")
            return default
        return str(typer.prompt(question, default=default) if default is not None else typer.prompt(question))

    def secret(self, question: str) -> str:
        return str(typer.prompt(question, hide_input=True)).strip()


def _list_models(provider: str, base_url: str, environ: Mapping[str, str]) -> tuple[list[str], str | None]:
    from wilton_core.registry.discovery import list_upstream

    try:
        return asyncio.run(list_upstream(provider, base_url, environ=environ, timeout=5.0)), None
    except TimeoutError:
        return [], "no answer within 5s"
    except WiltonError as exc:
        return [], str(exc)


_INTENT_HINTS = {"code": ("coder", "code"), "vision": ("-v", "llava", "vision", "moondream", "minicpm")}
# never a chat model: embedding and reranking models answer /api/chat with an error
_NOT_CHAT = ("embed", "bge-", "minilm", "rerank", "nomic")
# the seed's chat models (000: dolphin-mistral), then the hardware table's chat/general picks,
# best first; a pulled one of these beats any other name
_SEED_CHAT = ("dolphin-mistral", "llama3.1:8b", "qwen2.5:14b", "qwen2.5:7b", "mistral", "llama3.2:3b",
              "qwen2.5:3b", "phi3", "gemma2:2b", "llama3.2:1b", "qwen2.5:1.5b", "qwen2.5:0.5b", "smollm2")
_CHATTY = ("instruct", "chat", "dolphin", "hermes", "-it")


def chat_choice(pulled: Sequence[str]) -> str | None:
    """The pulled model best suited to chat: one of the seed's chat models, else an
    instruct/chat-tuned name, else any general model; never a coder, vision or embedding model."""
    from wilton_core.registry.discovery import same_model_name

    special = [h for hs in _INTENT_HINTS.values() for h in hs] + list(_NOT_CHAT)
    general = [p for p in pulled if not any(h in p.lower() for h in special)]
    for seed in _SEED_CHAT:
        hit = next((p for p in general if same_model_name(seed, p) or p.lower().startswith(seed + ":")), None)
        if hit is not None:
            return hit
    return next((p for p in general if any(h in p.lower() for h in _CHATTY)), general[0] if general else None)


def _pulled_for(intent: str, pulled: Sequence[str]) -> str | None:
    """A pulled model whose name suggests `intent`; for chat, see `chat_choice`."""
    hints = _INTENT_HINTS.get(intent)
    if hints is not None:
        return next((p for p in pulled if any(h in p.lower() for h in hints)), None)
    return chat_choice(pulled)


def _pick_ollama_models(ask: _Asker, hw: HardwareProfile, pulled: list[str],
                        flags: Mapping[str, str | None]) -> dict[str, str]:
    from wilton_core.registry.discovery import same_model_name

    rec = hw.recommend_by_intent()
    out: dict[str, str] = {}
    for intent in ("chat", "code", "vision"):
        given = flags.get(intent)
        if given is not None:
            if given:
                out[intent] = given
            continue
        default = rec.get(intent)
        if pulled and default and not any(same_model_name(default, p) for p in pulled):
            # Prefer what is already pulled: a recommendation that needs a download fails its test.
            default = _pulled_for(intent, pulled)
        if not ask.interactive and default is None:
            continue
        name = ask.text(f"Ollama model for {intent} (empty to skip)", default or "")
        if name.strip():
            out[intent] = name.strip()
    return out


def _render_preview(console: Console, preview: Mapping[str, Mapping[str, str | None]]) -> None:
    from rich.table import Table

    table = Table(title="Routing (per intent and tier)", title_justify="left")
    table.add_column("intent")
    for tier in TIERS:
        table.add_column(tier)
    for intent in INTENTS:
        table.add_row(intent, *[preview[intent][t] or "-" for t in TIERS])
    console.print(table)


def _render_hardware(console: Console, hw: HardwareProfile) -> None:
    console.print(f"[green]✓[/] {hw.summary()}")
    size = hw.max_model_size()
    if size == "none":
        console.print("  Too small for a 3B model: the embedded SmolLM2-135M is what fits here.")
    else:
        console.print(f"  This machine can run local models up to {size.upper()}.")
    console.print("  Recommended: " + ", ".join(hw.recommend_local_models()))


def _split_providers(value: str | None) -> set[str] | None:
    if value is None:
        return None
    chosen = {p.strip().lower() for p in value.split(",") if p.strip()}
    unknown = chosen - set(PROVIDER_CHOICES)
    if unknown:
        raise typer.BadParameter(f"unknown provider(s) {', '.join(sorted(unknown))}; "
                                 f"choose from {', '.join(PROVIDER_CHOICES)}", param_hint="--provider")
    return chosen


def setup_command(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="non-interactive: take every default")] = False,
    provider: Annotated[str | None, typer.Option(
        help="comma-separated providers to configure: ollama,server,groq,gemini,openai,anthropic "
             "(default: ask; with --yes: ollama/server when their flags are given, API providers "
             "whose key variable is set)")] = None,
    ollama_host: Annotated[str | None, typer.Option(help="Ollama URL (default $OLLAMA_HOST or :11434)")] = None,
    ollama_chat_model: Annotated[str | None, typer.Option(help="Ollama model for chat ('' = none)")] = None,
    ollama_code_model: Annotated[str | None, typer.Option(help="Ollama model for code ('' = none)")] = None,
    ollama_vision_model: Annotated[str | None, typer.Option(help="Ollama model for vision ('' = none)")] = None,
    server_base_url: Annotated[str | None, typer.Option(
        help="OpenAI-compatible server (llama.cpp, vLLM), e.g. http://127.0.0.1:8081/v1")] = None,
    server_model: Annotated[str | None, typer.Option(
        help="model name on that server (default: the listed model best suited to chat)")]
    = None,
    groq_key_env: Annotated[str, typer.Option(help="variable holding the Groq key")] = "GROQ_API_KEY",
    gemini_key_env: Annotated[str | None, typer.Option(
        help=f"variable holding the Gemini key (default: any of {', '.join(GEMINI_KEY_ENVS)}, the first set "
             "wins; a key typed in is saved as GEMINI_API_KEY)")] = None,
    openai_key_env: Annotated[str, typer.Option(help="variable holding the OpenAI key")] = "OPENAI_API_KEY",
    anthropic_key_env: Annotated[str, typer.Option(help="variable holding the Anthropic key")]
    = "ANTHROPIC_API_KEY",
    groq_base_url: Annotated[str | None, typer.Option(help="Groq endpoint override (proxy, test)")] = None,
    gemini_base_url: Annotated[str | None, typer.Option(help="Gemini endpoint override")] = None,
    openai_base_url: Annotated[str | None, typer.Option(help="OpenAI endpoint override (proxy, Azure)")] = None,
    anthropic_base_url: Annotated[str | None, typer.Option(help="Anthropic endpoint override")] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="config file to write")] = DEFAULT_CONFIG_FILE,
    env_file: Annotated[Path, typer.Option(help="keys file to write (mode 0600)")] = DEFAULT_ENV_FILE,
    force: Annotated[bool, typer.Option(help="overwrite an existing config file")] = False,
    skip_tests: Annotated[bool, typer.Option(help="do not test the models")] = False,
    test_timeout: Annotated[float, typer.Option(help="seconds per model test", min=0.1)] = 30.0,
    store_url: Annotated[str | None, typer.Option(help="store for test results (default: settings)")] = None,
    no_store: Annotated[bool, typer.Option(help="do not save test results in the store")] = False,
    strict: Annotated[bool, typer.Option(help="exit 1 when a configured model fails its test")] = False,
) -> None:
    """Detect hardware, configure local and API models, test them, write the config."""
    from rich.rule import Rule

    from wilton_core.cli.console import make_console

    console = make_console(highlight=False)
    ask = _Asker(not yes, console)
    chosen = _split_providers(provider)
    environ: dict[str, str] = {**os.environ, **read_env_file(env_file)}
    key_envs = {"groq": groq_key_env, "openai": openai_key_env, "anthropic": anthropic_key_env,
                "gemini": gemini_key_env or next((n for n in GEMINI_KEY_ENVS if environ.get(n)), "GEMINI_API_KEY")}
    # what the config names: the one documented Gemini list, unless a variable was chosen
    config_envs: dict[str, str | list[str]] = {**key_envs, "gemini": gemini_key_env or list(GEMINI_KEY_ENVS)}
    base_overrides = {k: v for k, v in (("groq", groq_base_url), ("gemini", gemini_base_url),
                                        ("openai", openai_base_url), ("anthropic", anthropic_base_url)) if v}

    if config.exists() and not force and not ask.confirm(f"{config} exists. Overwrite it?", False):
        typer.echo(f"setup: {config} exists; pass --force to overwrite it", err=True)
        raise typer.Exit(2)

    def wanted(name: str, question: str, auto: bool) -> bool:
        if chosen is not None:
            return name in chosen
        return ask.confirm(question, auto)

    console.print(Rule("1/5 Hardware"))
    hw = detect_hardware()
    _render_hardware(console, hw)

    answers = WizardAnswers(api_base_urls=base_overrides)
    console.print(Rule("2/5 Local models"))
    ollama_default = ollama_host or environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST
    if wanted("ollama", "Configure Ollama?", auto=bool(ollama_host or environ.get("OLLAMA_HOST"))):
        host = ask.text("Ollama host", ollama_default).rstrip("/")
        pulled, err = _list_models("ollama", host, environ)
        if err:
            console.print(f"[yellow]![/] Ollama at {host} did not answer ({err}); models are configured "
                          "anyway and will fail their test until it runs")
        else:
            console.print(f"[green]✓[/] Ollama at {host}: {', '.join(pulled) or 'no model pulled yet'}")
        answers.ollama_host = host
        answers.ollama_models = _pick_ollama_models(
            ask, hw, pulled,
            {"chat": ollama_chat_model, "code": ollama_code_model, "vision": ollama_vision_model})
        from wilton_core.registry.discovery import same_model_name

        missing = [n for n in answers.ollama_models.values()
                   if pulled and not any(same_model_name(n, p) for p in pulled)]
        for n in dict.fromkeys(missing):
            console.print(f"  pull it first: [bold]ollama pull {n}[/]")
    if wanted("server", "Configure an OpenAI-compatible server (llama.cpp, vLLM)?", auto=bool(server_base_url)):
        base = ask.text("Server base URL", server_base_url or "http://127.0.0.1:8081/v1").rstrip("/")
        served, err = _list_models("openai", base, environ)
        if err:
            console.print(f"[yellow]![/] {base} did not answer ({err})")
        else:
            console.print(f"[green]✓[/] {base}: {', '.join(served) or 'no model listed'}")
        answers.server_base_url = base
        # the same rule as Ollama's chat pick: a server listing an embedder first must not make it the chat model
        pick = server_model or chat_choice(served) or (served[0] if served else None)
        answers.server_model = ask.text("Model name on that server", pick)

    console.print(Rule("3/5 API models (fallback and hard requests)"))
    new_keys: dict[str, str] = {}
    for name in ("groq", "gemini", "openai", "anthropic"):
        spec = API_PROVIDERS[name]
        env_name = key_envs[name]
        have = environ.get(env_name)
        if not wanted(name, f"Configure {spec.label}?", auto=bool(have)):
            continue
        if have and ask.confirm(f"{env_name} is already set: use it?", True):
            key = have
        elif ask.interactive:
            key = ask.secret(f"{spec.label} key ({spec.key_hint})")
        else:
            typer.echo(f"setup: {name}: set {env_name} in the environment (keys are never read from "
                       "the command line)", err=True)
            raise typer.Exit(2)
        if not key:
            console.print(f"[yellow]![/] no key given: {name} skipped")
            continue
        answers.api[name] = config_envs[name]
        new_keys[env_name] = key
        environ[env_name] = key
        console.print(f"[green]✓[/] {name} configured (key in {env_file} as {env_name})")
    if not answers.api:
        console.print("  No API model: every request stays local, so phi stays 1.0 and a lower target "
                      "cannot be met. Add one later with `wiltonctl setup --provider groq` (or gemini, "
                      "openai, anthropic) once its key is set.")

    try:
        raw, cfg = build_config(answers)
    except ConfigError as exc:
        typer.echo(f"setup: {exc}", err=True)
        raise typer.Exit(2) from None
    if not cfg.models:
        typer.echo("setup: nothing configured; choose at least one provider", err=True)
        raise typer.Exit(2)

    console.print(Rule("4/5 Testing every configured model"))
    statuses: dict[str, ProbeResult] | None = None
    failed: list[str] = []
    if not skip_tests:
        from wilton_core.cli.models import open_status_store, run_tests

        store = open_status_store(store_url, disabled=no_store)
        try:
            reg = ModelRegistry(cfg, store=store, environ=environ)
            statuses = run_tests(reg, [m.id for m in cfg.models], test_timeout, console)
        finally:
            if store is not None:
                store.close()
        failed = [i for i, r in statuses.items() if not r.ok]
        ok = len(statuses) - len(failed)
        console.print(f"{ok}/{len(statuses)} models answered")

    console.print(Rule("5/5 Routing and files"))
    _render_preview(console, routing_preview(cfg.models, statuses, cfg.routing.intent_defaults, environ))
    text = "# WiltonOS LLM stack config, written by `wiltonctl setup`. Keys are in the env file.\n"
    text += dump_toml(raw)
    import tomllib

    if parse_config(tomllib.loads(text), str(config)) != cfg:
        raise ConfigError("setup: the written config does not read back identically (bug)")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")
    console.print(f"[green]✓[/] wrote {config} ({len(cfg.models)} models)")
    if new_keys:
        write_env_file(env_file, new_keys)
        console.print(f"[green]✓[/] wrote {len(new_keys)} key(s) to {env_file} (mode 0600)")
    console.print(f"Next: WILTON_CONFIG={config} wiltonctl models list")
    if failed:
        console.print(f"[yellow]![/] failed their test: {', '.join(failed)} (see `wiltonctl models test`)")
        if strict:
            raise typer.Exit(1)


def register(parent: typer.Typer) -> None:
    parent.command("setup")(setup_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the wizard alone (`python -m wilton_core.cli.setup`), as wiltonctl would."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(setup_command)
    try:
        # standalone_mode=False: click *returns* the code of a typer.Exit instead of raising it.
        rv = app(args=list(argv) if argv is not None else None, standalone_mode=False)
        if isinstance(rv, int):
            return rv
    except typer.Exit as e:
        return int(e.exit_code or 0)
    except typer.Abort:
        print("setup: aborted")
        return 130
    except WiltonError as e:
        print(f"setup: {e}")
        return 2
    except typer.TyperException as e:
        # typer >= 0.29 vendors click: its usage errors are not `click.ClickException`s.
        show = getattr(e, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(e, "exit_code", 2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
