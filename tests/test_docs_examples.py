"""Run the code blocks of docs/python-api.md and docs/tools.md as written, against a fake upstream.

The docs' own TOML config is used with its Ollama address pointed at FakeUpstream (which speaks
Ollama /api/chat); a temp SQLite store receives the ledger. Python blocks run in one subprocess,
in order, sharing globals; a block with top-level `await` runs in its own `asyncio.run`, as a
reader pasting it into a script would (so the library's loop change is exercised too). Every
`print(...)  # expected` line in the docs is an assertion on the output.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wilton_core.config import load_config
from wilton_core.store import open_store
from wilton_core.testing.fake_upstream import FakeUpstream

DOCS = Path(__file__).resolve().parent.parent / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
EXPECTED = re.compile(r"^\s*print\(.*\)\s+#\s(.+)$")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))

RUNNER = """
import ast, asyncio, json, sys
blocks = json.load(open(sys.argv[1], encoding="utf-8"))
g = {"__name__": "__docs__"}
for i, (doc, src) in enumerate(blocks):
    print(f"@@ block {i} of {doc}", flush=True)
    code = compile(src, f"<{doc} block {i}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, g)
    if asyncio.iscoroutine(result):
        asyncio.run(result)
"""

# variables of the reader's shell that would change what the examples do
_SCRUB = re.compile(r"^(WILTON_|OLLAMA_|CHAT_|CODE_|VISION_|GOOGLE_|GEMINI_|OPENAI_|ANTHROPIC_|GROQ_)")


def blocks(doc: str, lang: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer((DOCS / doc).read_text(encoding="utf-8")) if m.group(1) == lang]


def expected_lines(sources: list[str]) -> list[str]:
    return [m.group(1).strip() for src in sources for line in src.splitlines() if (m := EXPECTED.match(line))]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as f:
        yield f


def test_the_docs_config_is_valid(tmp_path: Path) -> None:
    [toml] = blocks("python-api.md", "toml")
    path = tmp_path / "wilton.toml"
    path.write_text(toml, encoding="utf-8")
    cfg = load_config(path)
    assert {m.id for m in cfg.models} == {"ollama-chat", "ollama-code", "ollama-vision", "gemini-flash-lite"}
    assert cfg.routing.intent_defaults["vision"] == "ollama-vision"


def test_python_api_and_tools_examples_run_as_written(tmp_path: Path, fake: FakeUpstream) -> None:
    [toml] = blocks("python-api.md", "toml")
    config = tmp_path / "wilton.toml"
    config.write_text(toml.replace("http://127.0.0.1:11434", fake.url), encoding="utf-8")
    (tmp_path / "photo.png").write_bytes(PNG)
    sources = [("python-api.md", b) for b in blocks("python-api.md", "python")]
    sources += [("tools.md", b) for b in blocks("tools.md", "python")]
    assert len(sources) >= 10
    (tmp_path / "blocks.json").write_text(json.dumps(sources), encoding="utf-8")
    (tmp_path / "runner.py").write_text(RUNNER, encoding="utf-8")
    store_path = tmp_path / "wilton.db"
    env = {k: v for k, v in os.environ.items() if not _SCRUB.match(k)}
    env.update(WILTON_CONFIG=str(config), WILTON_STORE_URL=f"sqlite:///{store_path}", OLLAMA_HOST=fake.url,
               WILTON_DATA_DIR=str(tmp_path / "data"), PYTHONWARNINGS="error::RuntimeWarning")

    proc = subprocess.run([sys.executable, "runner.py", "blocks.json"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    printed = [ln.strip() for ln in proc.stdout.splitlines() if not ln.startswith("@@ block")]
    assert printed == expected_lines([src for _, src in sources])

    # every request the examples made is in the shared ledger (the interpreter exit flushed it)
    store = open_store(f"sqlite:///{store_path}")
    try:
        rows = store.query("SELECT model_id, status, replica FROM ledger ORDER BY ts")
    finally:
        store.close()
    assert store_path.exists()
    by_model = [r[0] for r in rows]
    assert len(rows) == 10, rows
    assert all(r[1] == "ok" and r[2].endswith("-inprocess") for r in rows)
    assert by_model.count("ollama-chat") == 6  # manager, client, DolphinChat, own manager, two tool turns
    assert {"ollama-code", "ollama-vision", "ollama/llama3.2:1b"} <= set(by_model)
    # the image reached the vision model as Ollama `images`
    assert fake.last_body("minicpm-v")["messages"][-1]["images"] == [base64.b64encode(PNG).decode()]
