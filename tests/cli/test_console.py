"""make_console: piped output is wide (rich would fold tables to 80 columns), terminals keep their size."""

from __future__ import annotations

import io

import pytest

from wilton_core.cli.console import PIPE_WIDTH, make_console


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_piped_output_is_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console(file=io.StringIO()).width == PIPE_WIDTH


def test_columns_and_explicit_width_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "97")
    assert make_console(file=io.StringIO()).width == 97
    monkeypatch.delenv("COLUMNS")
    assert make_console(file=io.StringIO(), width=50).width == 50


def test_a_terminal_is_not_forced_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert make_console(file=_Tty()).width != PIPE_WIDTH
