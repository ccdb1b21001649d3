"""`wiltonctl keys` end to end on a SQLite store (the CLI writes the store directly)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wilton_core.access.keys import KeyRepo, hash_key
from wilton_core.cli.main import main
from wilton_core.store import open_store


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_lifecycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    code, out, _ = run(capsys, "keys", "create", "--name", "team-a", "--budget-usd", "50", "--budget-period",
                       "month", "--rpm", "60", "--tpm", "100000", "--models", "local-*,gpt-4o", "--local-only",
                       "--expires", "30d", "--json", "--store-url", url)
    assert code == 0
    created = json.loads(out)
    assert set(created) == {"id", "name", "key"} and created["key"].startswith("sk-wilton-")
    store = open_store(url)
    k = KeyRepo(store).get("team-a")
    assert k.key_hash == hash_key(created["key"]) and k.models == ("local-*", "gpt-4o") and k.local_only
    assert k.budget_usd == 50.0 and k.budget_period == "month" and k.rpm == 60 and k.tpm == 100000
    code, out, _ = run(capsys, "keys", "list", "--store-url", url)
    assert code == 0 and "team-a" in out and "$0.00 / $50.00 /month" in out and created["key"] not in out
    code, out, _ = run(capsys, "keys", "list", "--json", "--store-url", url)
    assert json.loads(out)[0]["spent_usd"] == 0.0
    code, out, _ = run(capsys, "keys", "show", "team-a", "--json", "--store-url", url)
    assert json.loads(out)["state"] == "active" and "key_hash" not in out
    code, out, _ = run(capsys, "keys", "rotate", "team-a", "--grace", "1h", "--json", "--store-url", url)
    rotated = json.loads(out)
    assert code == 0 and rotated["id"] == created["id"] and rotated["key"] != created["key"]
    code, out, _ = run(capsys, "keys", "revoke", created["id"], "--store-url", url)
    assert code == 0 and "revoked" in out
    assert KeyRepo(store).get("team-a").state(KeyRepo(store).get("team-a").revoked_at or 0) == "revoked"
    store.close()


@pytest.mark.parametrize("args", [["--name", "bad name"], ["--name", "x", "--budget-period", "year"],
                                  ["--name", "x", "--expires", "soon"], ["--name", "x", "--models", "a b"],
                                  ["--name", "x", "--rpm", "0"]])
def test_create_rejects_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run(capsys, "keys", "create", *args, "--store-url", f"sqlite:///{tmp_path / 'w.db'}")
    assert code == 2 and err.startswith("wiltonctl keys: ") and "Traceback" not in err and not out


def test_unknown_key_and_duplicate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    assert run(capsys, "keys", "revoke", "nope", "--store-url", url)[0] == 2
    assert run(capsys, "keys", "create", "--name", "a", "--store-url", url)[0] == 0
    code, _, err = run(capsys, "keys", "create", "--name", "a", "--store-url", url)
    assert code == 2 and "exists already" in err
