"""Read-only commands never create state; a missing store is a clear error (issue 18)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wilton_core.store import StoreNotFoundError, open_store

ENV_DROP = ("WILTON_STORE_URL", "WILTON_DATA_DIR", "WILTON_CONFIG")


def wiltonctl(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_DROP}
    return subprocess.run([sys.executable, "-m", "wilton_core.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def test_open_store_create_false_creates_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    with pytest.raises(StoreNotFoundError, match="no store at"):
        open_store(url, create=False)
    assert not (tmp_path / "sub").exists()
    open_store(url).close()  # the writers' default still creates it
    open_store(url, create=False).close()


@pytest.mark.parametrize("args", [
    ("insights", "list"), ("insights", "show"), ("hpc", "status"), ("hpc", "results", "abc"),
    ("hpc", "resume", "abc"), ("hpc", "cancel", "abc"), ("hpc", "delete", "abc"),
])
def test_reads_from_another_directory_create_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    r = wiltonctl(tmp_path, *args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "no store at" in r.stderr and str(tmp_path / "data" / "wilton.db") in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []  # no ./data, no ./data/wilton.db


def test_explicit_missing_sqlite_url_is_an_error_not_an_empty_store(tmp_path: Path) -> None:
    r = wiltonctl(tmp_path, "insights", "list", "--store-url", f"sqlite:///{tmp_path / 'nonexistent' / 'x.db'}")
    assert r.returncode == 1 and "no store at" in r.stderr
    assert "no insight reports yet" not in r.stdout
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("args", [("insights", "list"), ("hpc", "status"), ("models", "list")])
def test_a_bad_flag_is_blamed_on_the_flag(tmp_path: Path, args: tuple[str, ...]) -> None:
    r = wiltonctl(tmp_path, *args, "--store-url", "foo://bar")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "--store-url" in r.stderr and "WILTON_STORE_URL" not in r.stderr
    assert "Traceback" not in r.stderr


def test_models_list_without_a_store_lists_and_creates_nothing(tmp_path: Path) -> None:
    r = wiltonctl(tmp_path, "models", "list")
    assert r.returncode == 0, r.stderr
    assert "local-small" in r.stdout and "no test results yet" in r.stderr
    assert list(tmp_path.iterdir()) == []
