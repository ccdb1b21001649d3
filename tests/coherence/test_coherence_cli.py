"""wiltonctl login / phi get|set against a real uvicorn on 127.0.0.1:0, and wilton-coherence flags."""

import json
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from coh_helpers import PASSWORD, cheap_hasher

from wilton_core.cli.main import main as wiltonctl
from wilton_core.coherence.app import create_app
from wilton_core.coherence.cli import main as coherence_main
from wilton_core.coherence.service import CoherenceOptions, CoherenceService
from wilton_core.store.sqlite import SqliteStore


@pytest.fixture
def live_url(tmp_path) -> Iterator[str]:
    store = SqliteStore(tmp_path / "live.db")
    svc = CoherenceService(CoherenceOptions(password=PASSWORD, data_dir=tmp_path), store=store,
                           hasher=cheap_hasher(), announce=lambda s: None)
    svc.start(scheduler=False)
    server = uvicorn.Server(uvicorn.Config(create_app(svc), host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    th.join(10)
    svc.stop()
    store.close()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = wiltonctl(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_login_get_set_refresh(live_url, tmp_path, capsys) -> None:
    tf = tmp_path / "cfg" / "token.json"
    common = ["--url", live_url, "--token-file", str(tf)]
    code, out, err = run(capsys, "phi", "get", *common)
    assert code == 2 and "not logged in" in err and "Traceback" not in err
    code, out, err = run(capsys, "login", "-u", "admin", "-p", "nope", *common)
    assert code == 2 and "login failed" in err and "Traceback" not in err
    code, out, _ = run(capsys, "login", "-u", "admin", "-p", PASSWORD, *common)
    assert code == 0 and "logged in" in out
    assert (tf.stat().st_mode & 0o777) == 0o600
    assert PASSWORD not in tf.read_text()
    code, out, _ = run(capsys, "phi", "set", "0.6", *common)
    assert code == 0 and "60.0%" in out
    code, out, _ = run(capsys, "phi", "get", "--json", *common)
    assert code == 0 and json.loads(out)["phi_target"] == 0.6
    for bad in ("2", "nan", "abc", "1.01", "inf"):
        code, _, err = run(capsys, "phi", "set", bad, *common)
        assert code == 2 and "[0, 1]" in err
    # An expired access token is refreshed transparently and the rotated refresh token saved.
    cached = json.loads(tf.read_text())
    cached["access_expires_at"] = 0
    tf.write_text(json.dumps(cached))
    code, out, _ = run(capsys, "phi", "get", *common)
    assert code == 0 and "60.0%" in out
    assert json.loads(tf.read_text())["refresh_token"] != cached["refresh_token"]
    code, out, _ = run(capsys, "logout", "--token-file", str(tf))
    assert code == 0 and not tf.exists()


def test_unreachable_daemon_is_one_line(tmp_path, capsys) -> None:
    code, _, err = run(capsys, "login", "-u", "a", "-p", "b", "--url", "http://127.0.0.1:9",
                       "--token-file", str(tmp_path / "t.json"))
    assert code == 2 and "cannot reach" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, msg", [
    (["--phi-target", "1.5"], "phi_target"),
    (["--interval", "0"], "interval"),
    (["--store-url", "mysql://x"], "WILTON_STORE_URL"),
])
def test_daemon_flags_fail_readably(argv, msg, capsys, tmp_path) -> None:
    assert coherence_main([*argv, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_service_opens_store_from_url(tmp_path) -> None:
    svc = CoherenceService(CoherenceOptions(password="pw", data_dir=tmp_path),
                           store_url=f"sqlite:///{tmp_path}/by-url.db", hasher=cheap_hasher(),
                           announce=lambda s: None)
    svc.start(scheduler=False)
    try:
        assert svc.step().steps == 1
    finally:
        svc.stop()
    assert (tmp_path / "by-url.db").exists()
