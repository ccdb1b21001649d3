"""`wilton-router` in-process: the typer front (flags, help, exit codes) and the settings it wires."""

from __future__ import annotations

from pathlib import Path

import pytest

from wilton_core.providers.http1 import Http1Client
from wilton_core.router.cli import _flags, build_app, main
from wilton_core.settings import load_settings


def test_help_lists_every_flag_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--config", "--port", "--store-url", "--workers", "--header-timeout", "--max-connections",
                 "--validate-and-exit", "--allow-unauthenticated"):
        assert flag in out, flag
    assert "--reuse-port" not in out  # the workers' own flag stays hidden


def test_usage_errors_exit_2_naming_the_program(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bogus"]) == 2
    assert main(["--port", "eighty"], prog="wiltonctl router serve") == 2
    err = capsys.readouterr().err
    assert "No such option: --bogus" in err and "wiltonctl router serve" in err and "Traceback" not in err


def test_bad_settings_exit_2_with_the_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--max-headers", "1000", "--store-url", f"sqlite:///{tmp_path / 'w.db'}",
                 "--validate-and-exit"]) == 2
    assert "WILTON_ROUTER_MAX_HEADERS" in capsys.readouterr().err


def test_workers_are_handed_the_flags_given() -> None:
    params = {"config": "w.toml", "port": 8080, "host": None, "workers": 2, "keep_alive": 2.5,
              "validate_and_exit": False, "allow_unauthenticated": True}
    assert _flags(params) == ["--config", "w.toml", "--port", "8080", "--workers", "2", "--keep-alive", "2.5",
                              "--allow-unauthenticated"]


@pytest.mark.parametrize(("upstream_http", "lean"), [("auto", True), ("httpx", False)])
def test_the_upstream_http_setting_picks_the_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    upstream_http: str, lean: bool) -> None:
    monkeypatch.setenv("WILTON_UPSTREAM_HTTP", upstream_http)
    settings = load_settings(store_url=f"sqlite:///{tmp_path / 'w.db'}")
    _app, service, ledger = build_app(settings)
    try:
        # local-small of the embedded defaults is a plain-http OpenAI-compatible upstream
        client = service.runtimes["local-small"].provider._client
        assert isinstance(client, Http1Client) is lean
    finally:
        ledger.stop()
        service.store.close()
