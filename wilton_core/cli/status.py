"""`wiltonctl status`: each process of the stack, its port, pid and health, as a table or JSON.

A process is up when its health URL answers 2xx; a pid file under the run directory
($WILTON_RUN_DIR, default ./run, written by scripts/lib.sh) adds the pid and whether it is
alive. Processes started another way (compose, systemd) show up by their HTTP health alone.

Each row has one state: `up`; `busy` (accepted the connection, did not answer in time: a
single-slot llama.cpp server generating) which counts as up; `down`; or `not started here` (a
process without HTTP and without a pid file here, e.g. the insight hook under compose), which
is unknown, not down. Exit status: 0 when nothing is down, 1 when something is.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from wilton_core.settings import Settings

__all__ = ["ProcessSpec", "ProcessStatus", "api_tier", "api_tier_from_router", "app", "ask_router_tier",
           "collect_status", "default_specs", "exit_code", "register", "status"]

State = Literal["up", "busy", "down", "not started here"]
UP: State = "up"
BUSY: State = "busy"
DOWN: State = "down"
NOT_HERE: State = "not started here"


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    name: str
    url: str | None = None             # base URL; None for processes without HTTP (insight)
    health_path: str = "/healthz"
    detail_path: str | None = None      # e.g. the router's /readyz: shown, does not decide "up"
    pid_name: str | None = None         # pid file stem under the run dir
    error: str | None = None            # known broken before probing (e.g. the config does not load)

    @property
    def port(self) -> int | None:
        if not self.url:
            return None
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "https" else 80)


@dataclass(slots=True)
class ProcessStatus:
    name: str
    port: int | None
    pid: int | None
    pid_alive: bool | None
    url: str | None
    http_status: int | None
    healthy: bool
    detail: str = ""
    busy: bool = False                  # accepted the connection, did not answer in time
    state: State = DOWN
    extra: dict[str, Any] = field(default_factory=dict)


def read_pid(run_dir: Path, name: str) -> int | None:
    try:
        text = (run_dir / f"{name}.pid").read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _get(client: Any, url: str) -> tuple[int | None, str]:
    import httpx

    try:
        r = client.get(url)
    except httpx.HTTPError as e:
        return None, type(e).__name__
    return r.status_code, "" if r.is_success else f"HTTP {r.status_code}"


def probe(spec: ProcessSpec, client: Any, run_dir: Path) -> ProcessStatus:
    pid = read_pid(run_dir, spec.pid_name) if spec.pid_name else None
    alive = pid_alive(pid) if pid is not None else None
    st = ProcessStatus(name=spec.name, port=spec.port, pid=pid, pid_alive=alive, url=spec.url,
                       http_status=None, healthy=False)
    if spec.error is not None:
        st.detail = spec.error
        return st
    if spec.url is None:
        st.healthy = bool(alive)
        st.state = UP if alive else (DOWN if pid is not None else NOT_HERE)
        st.detail = "running" if alive else ("pid file stale" if pid is not None else NOT_HERE)
        return st
    code, why = _get(client, spec.url.rstrip("/") + spec.health_path)
    st.http_status = code
    st.healthy = code is not None and 200 <= code < 300 and alive is not False
    if alive is False:
        st.detail = "pid file stale"
    elif code is None and why == "ReadTimeout":
        # Listening but silent: a single-slot llama.cpp server answers nothing while it generates.
        st.busy = True
        st.detail = "busy: connected, no answer in time (generating? retry, or --timeout 10)"
    elif code is None:
        st.detail = f"unreachable ({why})"
    elif why:
        st.detail = why
    else:
        st.detail = "ok"
    st.state = UP if st.healthy else (BUSY if st.busy else DOWN)
    if st.healthy and spec.detail_path:
        dcode, dwhy = _get(client, spec.url.rstrip("/") + spec.detail_path)
        st.detail = "ready" if dcode is not None and 200 <= dcode < 300 else f"not ready ({dwhy})"
    return st


def exit_code(rows: list[ProcessStatus]) -> int:
    """0 when nothing is down (busy is up; "not started here" is unknown, not down), else 1."""
    return 1 if any(r.state == DOWN for r in rows) else 0


def default_specs(settings: Settings) -> list[ProcessSpec]:
    """The stack's processes from settings, plus each distinct local model server of the config."""
    specs = [
        ProcessSpec("router", settings.resolved_router_url(), "/healthz", "/readyz", "router"),
        ProcessSpec("exporter", f"http://127.0.0.1:{settings.exporter_port}", "/healthz", None, "exporter"),
        ProcessSpec("coherence", settings.resolved_coherence_url(), "/healthz", None, "coherence"),
        ProcessSpec("insight", None, pid_name="insight"),
    ]
    try:
        cfg = settings.stack_config()
    except Exception as e:  # a broken config must not hide the processes' status
        specs.append(ProcessSpec("local model", None, error=f"config error: {str(e).splitlines()[0]}"))
        return specs
    seen: set[str] = set()
    for m in cfg.models:
        if m.simulated and m.base_url and m.base_url not in seen:
            # the --demo upstream: a fake, said so in its name, health at the server root
            seen.add(m.base_url)
            root = m.base_url.rstrip("/").removesuffix("/v1")
            specs.append(ProcessSpec(f"demo upstream {m.id} (simulated)", root, "/healthz", None, "demo-upstream"))
            continue
        if not m.is_local or not m.base_url or m.base_url in seen:
            continue
        seen.add(m.base_url)
        # Ollama lists models at /api/tags; OpenAI-compatible servers (llama.cpp, vLLM) at /models
        path = "/api/tags" if m.provider == "ollama" else "/models"
        # scripts/start_local_model.sh runs the embedded llama.cpp server under the pid name "local-model"
        pid_name = "local-model" if m.base_url.rstrip("/").endswith(f":{settings.local_port}/v1") else None
        specs.append(ProcessSpec(f"local model {m.id}", m.base_url, path, None, pid_name))
    return specs


@dataclass(frozen=True, slots=True)
class ApiTier:
    """Which API models can be routed to; when none, phi cannot go below 1.0 and says why."""

    configured: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]  # (model id, env var(s) to set)
    simulated: tuple[str, ...]
    source: str = "router"                # "router": what the running router serves; else why not

    def message(self) -> str:
        note = "" if self.source == "router" else f" [{self.source}]"
        if self.configured:
            sim = f" (simulated: {', '.join(self.simulated)})" if self.simulated else ""
            return f"API tier: {', '.join(self.configured)}{sim}{note}"
        need = sorted({env for _, env in self.missing})
        return ("API tier: not configured — every request stays local, phi reads 1.0 and a lower target "
                f"cannot be met. Set one of: {', '.join(need)} (or start with scripts/up.sh --demo).{note}")


def api_tier(cfg: Any, environ: Any = None, *, source: str = "config") -> ApiTier:
    """From a config and an environment: what a router started now would serve."""
    api = [m for m in cfg.models if not m.is_local]
    ok = tuple(m.id for m in api if m.is_configured(environ))
    missing = tuple((m.id, " or ".join(m.key_env_names)) for m in api if not m.is_configured(environ))
    return ApiTier(ok, missing, tuple(m.id for m in api if m.simulated and m.id in ok), source)


def api_tier_from_router(body: Any) -> ApiTier | None:
    """From the running router's `GET /v1/models` (its `wilton` extension); None if the body is not
    a model list. The router, not the config on this disk, knows what it serves."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    ok: list[str] = []
    sim: list[str] = []
    missing: list[tuple[str, str]] = []
    for m in data:
        w = m.get("wilton") if isinstance(m, dict) else None
        if not isinstance(w, dict) or w.get("is_local") is not False or w.get("kind", "chat") != "chat":
            continue  # "auto", the local models, and embedding/speech models (the API tier is chat's)
        mid = str(m.get("id"))
        if w.get("configured") is True:
            ok.append(mid)
            if w.get("simulated") is True:
                sim.append(mid)
        else:
            missing.append((mid, str(w.get("reason") or "its key").removeprefix("set ")))
    return ApiTier(tuple(ok), tuple(missing), tuple(sim), "router")


def ask_router_tier(router_url: str, *, timeout_s: float, api_key: str | None = None,
                    transport: Any = None) -> ApiTier | None:
    """The running router's API tier, or None when it does not answer with a model list."""
    import httpx

    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        with httpx.Client(transport=transport, timeout=timeout_s, headers=headers) as client:
            r = client.get(router_url.rstrip("/") + "/v1/models")
        return api_tier_from_router(r.json()) if r.is_success else None
    except (httpx.HTTPError, ValueError):
        return None


def collect_status(specs: list[ProcessSpec], run_dir: Path, *, transport: Any = None,
                   timeout_s: float = 2.0) -> list[ProcessStatus]:
    import httpx

    with httpx.Client(transport=transport, timeout=timeout_s) as client:
        return [probe(s, client, run_dir) for s in specs]


_STYLE = {UP: "green", BUSY: "yellow", DOWN: "red", NOT_HERE: "dim"}


def _render(rows: list[ProcessStatus]) -> None:
    from rich.table import Table

    from wilton_core.cli.console import make_console

    table = Table(title="WiltonOS processes")
    for col in ("process", "port", "pid", "health", "detail"):
        table.add_column(col)
    for r in rows:
        pid = "-" if r.pid is None else f"{r.pid}{'' if r.pid_alive else ' (dead)'}"
        health = f"[{_STYLE[r.state]}]{'-' if r.state == NOT_HERE else r.state}[/]"
        table.add_row(r.name, "-" if r.port is None else str(r.port), pid, health, r.detail)
    make_console().print(table)


def status(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="pid files (WILTON_RUN_DIR, default ./run)")] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="seconds per health request")] = 2.0,
) -> None:
    """Show each process (router, exporter, coherence, insight, local model): port, pid, health.

    Health is up, busy (a local model generating: counts as up), down, or "-" for a process not
    started here (no pid file under the run dir, no HTTP port: unknown, not down). The API tier
    line is what the running router serves (GET /v1/models), else what the config says.

    Exit status: 0 when nothing is down, 1 when at least one process is down.
    """
    from wilton_core.settings import load_settings

    settings = load_settings()
    rd = run_dir or settings.run_dir
    rows = collect_status(default_specs(settings), rd, timeout_s=timeout)
    router_url = settings.resolved_router_url()
    tier = ask_router_tier(router_url, timeout_s=timeout, api_key=settings.router_api_key_value())
    if tier is None:
        try:
            tier = api_tier(settings.stack_config(), source=f"from the config: the router at {router_url} "
                                                            "did not answer GET /v1/models")
        except Exception:  # a broken config is already reported in the table
            tier = None
    if json_out:
        typer.echo(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        _render(rows)
        if tier is not None:
            typer.echo(tier.message())
    raise typer.Exit(exit_code(rows))


app = typer.Typer(help="Processes of the stack and their health.", add_completion=False)
app.callback(invoke_without_command=True)(status)


def register(parent: typer.Typer) -> None:
    """Hook for wiltonctl's main: adds `wiltonctl status`."""
    parent.command("status")(status)
