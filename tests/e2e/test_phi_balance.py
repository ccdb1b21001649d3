"""Issue "phi balancer" done-means, end to end with real processes:

router + coherence daemon + two fake upstreams (one local, one API) over one SQLite store.
A steady stream of mixed requests holds phi within 2 points of the target; `wiltonctl phi set 0.5`
moves it there within 3 control intervals; requests with bad tokens get 401 and change nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time

import httpx
import jwt
import pytest

from wilton_core.testing.fake_upstream import FakeUpstream
from wilton_core.testing.procs import ManagedProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

INTERVAL_S = 1.0

CONFIG = """
[[models]]
id = "local-1"
provider = "openai"
model = "local-1"
base_url = "{local}/v1"
tier = "selfhost"
is_local = true
capability = "standard"
context_window = 32768

[[models]]
id = "api-1"
provider = "openai"
model = "api-1"
base_url = "{api}/v1"
api_key_env = "E2E_API_KEY"
tier = "frontier"
is_local = false
capability = "advanced"
context_window = 128000
input_cost_per_mtok = 2.5
output_cost_per_mtok = 10.0

[routing]
window_s = 6
control_refresh_s = 0.25
"""

EASY = ["hi", "thanks!", "olá, tudo bem?", "bonjour", "what time zone is Lisbon in?", "hola, ¿qué tal?",
        "say hello to Ana", "capital of France?", "merci beaucoup", "good morning"]
HARD = [
    "Prove that there are infinitely many primes p such that p + 2 is also prime, or explain why this is open.",
    "Derive the closed form of sum_{k=1}^n k^3 step by step and prove it by induction.",
    "A train leaves at 3pm at 80 km/h; another at 4pm at 120 km/h from the same station. When and where "
    "does the second catch up? Show every step and check the answer.",
    "Write a lock-free multi-producer multi-consumer queue in C++ and prove its linearizability.",
    "Compare the asymptotic complexity of Dijkstra with a Fibonacci heap and with a binary heap, "
    "then derive when each is faster for sparse and dense graphs.",
    "Explique pas à pas pourquoi la série harmonique diverge, puis estime la somme des 10^6 premiers termes.",
    "Demuestra que la raíz cuadrada de 2 es irracional y generaliza a la raíz n-ésima de un entero no cuadrado.",
    "Analise a estabilidade de um controlador PI discreto com ganho kp=0.1 e ki=0.6 e calcule os polos.",
]


def _pool() -> list[str]:
    pool = []
    for i in range(12):
        for e in EASY:
            pool.append(f"{e} ({i})")
        for h in HARD:
            pool.append(f"{h} Case {i}.")
    return pool


async def _drive(base: str, seconds: float, pool: list[str], cursor: list[int], concurrency: int = 8,
                 max_requests: int = 20000) -> list[tuple[float, bool]]:
    """Send the pool round-robin for `seconds`; returns (finish time, is_local) per request."""
    out: list[tuple[float, bool]] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def worker() -> None:
            while time.monotonic() < deadline and len(out) < max_requests:
                i = cursor[0]
                cursor[0] += 1
                r = await client.post("/v1/chat/completions", json={
                    "model": "auto", "max_tokens": 16,
                    "messages": [{"role": "user", "content": pool[i % len(pool)]}]})
                assert r.status_code == 200, r.text
                out.append((time.monotonic(), r.headers["x-wilton-local"] == "true"))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def _phi(rows: list[tuple[float, bool]]) -> float:
    return sum(1 for _, local in rows if local) / len(rows)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("phi-e2e")
    local = FakeUpstream(models=["local-1"], name="local").start()
    api = FakeUpstream(models=["api-1"], name="api", api_key="e2e-api-secret").start()
    cfg = tmp / "wilton.toml"
    cfg.write_text(CONFIG.format(local=local.url, api=api.url))
    env = {"WILTON_CONFIG": str(cfg), "WILTON_STORE_URL": f"sqlite:///{tmp / 'wilton.db'}",
           "WILTON_DATA_DIR": str(tmp / "data"), "E2E_API_KEY": "e2e-api-secret",
           "WILTON_LEDGER_FLUSH_S": "0.1", "WILTON_TOKEN_FILE": str(tmp / "token.json")}
    rport, cport = free_port(), free_port()
    coherence = ManagedProcess.python_module(
        "wilton_core.coherence.cli", "--interval", str(INTERVAL_S), "--port", str(cport),
        env={**env, "WILTON_ADMIN_PASSWORD": "e2e-admin-pass"}, log=tmp / "coherence.log",
    ).start(f"http://127.0.0.1:{cport}/healthz", timeout=60)
    router = ManagedProcess.python_module(
        "wilton_core.router.cli", "--port", str(rport), env=env, log=tmp / "router.log",
    ).start(f"http://127.0.0.1:{rport}/readyz", timeout=60)
    yield {"router": f"http://127.0.0.1:{rport}", "coherence": f"http://127.0.0.1:{cport}", "env": env,
           "tmp": tmp, "procs": (router, coherence)}
    router.stop()
    coherence.stop()
    local.stop()
    api.stop()


def _wiltonctl(env: dict[str, str], coherence: str, *args: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env, "WILTON_COHERENCE_URL": coherence}
    return subprocess.run([sys.executable, "-m", "wilton_core.cli.main", *args], env=full, text=True,
                          capture_output=True, timeout=60)


def test_holds_target_then_follows_a_target_change(stack):
    pool = _pool()
    cursor = [0]
    asyncio.run(_drive(stack["router"], 8.0, pool, cursor))  # let the controller settle
    steady = asyncio.run(_drive(stack["router"], 6.0, pool, cursor))
    assert len(steady) > 300
    assert abs(_phi(steady) - 0.75) <= 0.02, _phi(steady)

    login = _wiltonctl(stack["env"], stack["coherence"], "login", "--username", "admin", "--password",
                       "e2e-admin-pass")
    assert login.returncode == 0, login.stderr
    t_set = time.monotonic()
    res = _wiltonctl(stack["env"], stack["coherence"], "phi", "set", "0.5")
    assert res.returncode == 0, res.stderr
    rows = asyncio.run(_drive(stack["router"], 3 * INTERVAL_S + 6.0, pool, cursor))
    after = [r for r in rows if r[0] >= t_set + 3 * INTERVAL_S + 0.5]  # 3 intervals + router refresh
    assert len(after) > 200
    assert abs(_phi(after) - 0.5) <= 0.02, _phi(after)

    got = _wiltonctl(stack["env"], stack["coherence"], "phi", "get", "--json")
    assert got.returncode == 0 and json.loads(got.stdout)["phi_target"] == 0.5


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_bad_tokens_get_401_and_change_nothing(stack):
    base = stack["coherence"]
    tok = httpx.post(base + "/auth/token", data={"username": "admin", "password": "e2e-admin-pass"}).json()
    good = tok["access_token"]
    before = httpx.get(base + "/phi", headers={"authorization": f"Bearer {good}"}).json()["phi_target"]
    header, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    hdr = jwt.get_unverified_header(good)
    forged = {
        "wrong": "not-a-token",
        "tampered": header + "." + _b64({**claims, "scope": "phi:read phi:write", "sub": "mallory"}) + "." + sig,
        "alg_none": _b64({"alg": "none", "typ": "JWT", "kid": hdr.get("kid")}) + "." + payload + ".",
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 3600}, "an-attacker-guess-that-is-32-bytes-long!", algorithm="HS256",
                              headers={"kid": hdr.get("kid")}),
        "wrong_audience": jwt.encode({**claims, "aud": "someone-else"}, "an-attacker-guess-that-is-32-bytes-long!", algorithm="HS256",
                                     headers={"kid": hdr.get("kid")}),
    }
    for name, t in forged.items():
        r = httpx.put(base + "/phi/target", json={"phi_target": 0.1}, headers={"authorization": f"Bearer {t}"})
        assert r.status_code == 401, (name, r.status_code, r.text)
    after = httpx.get(base + "/phi", headers={"authorization": f"Bearer {good}"}).json()["phi_target"]
    assert after == before
