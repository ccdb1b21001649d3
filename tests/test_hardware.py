import subprocess
from types import SimpleNamespace

import pytest

from wilton_core.hardware import (
    EMBEDDED_TINY_MODEL,
    NVIDIA_SMI_ARGS,
    HardwareProfile,
    detect_hardware,
    parse_nvidia_smi,
)

GIB = 1024**3


class FakePsutil:
    def __init__(self, total_gb, avail_gb, cores, threads):
        self._vm = SimpleNamespace(total=total_gb * GIB, available=avail_gb * GIB)
        self._cores, self._threads = cores, threads

    def virtual_memory(self):
        return self._vm

    def cpu_count(self, logical=True):
        return self._threads if logical else self._cores


def fake_run(stdout="", returncode=0, exc=None):
    calls = []

    def run(args, **kwargs):
        calls.append(args)
        if exc is not None:
            raise exc
        return subprocess.CompletedProcess(args, returncode, stdout=stdout, stderr="")

    run.calls = calls
    return run


def profile(ram=8.0, vram=None):
    return HardwareProfile(ram, ram / 2, 4, 8, "GPU" if vram else None, vram, "Linux")


def test_detects_a_gpu_box():
    run = fake_run("NVIDIA GeForce RTX 3060, 12288\nNVIDIA T400, 2048\n")
    hw = detect_hardware(psutil_module=FakePsutil(32, 20, 8, 16), run=run, platform_name="Linux")
    assert run.calls == [list(NVIDIA_SMI_ARGS)]
    assert hw.gpu_name == "NVIDIA GeForce RTX 3060" and hw.gpu_vram_gb == 12.0
    assert (hw.total_ram_gb, hw.available_ram_gb, hw.cpu_cores, hw.cpu_threads) == (32.0, 20.0, 8, 16)
    assert hw.max_model_size() == "13b"
    assert hw.as_dict()["max_model_size"] == "13b"
    assert "RTX 3060" in hw.summary()


@pytest.mark.parametrize("run", [
    fake_run(exc=FileNotFoundError("nvidia-smi")),
    fake_run(returncode=9, stdout="NVIDIA-SMI has failed"),
    fake_run(exc=subprocess.TimeoutExpired("nvidia-smi", 5)),
    fake_run(stdout="garbage without comma\n"),
])
def test_no_gpu_when_nvidia_smi_is_absent_or_broken(run):
    hw = detect_hardware(psutil_module=FakePsutil(8, 4, 4, 4), run=run, platform_name="Linux")
    assert hw.gpu_name is None and hw.gpu_vram_gb is None
    assert hw.max_model_size() == "7b"


def test_cpu_count_none_falls_back():
    class P(FakePsutil):
        def cpu_count(self, logical=True):
            return None

    hw = detect_hardware(psutil_module=P(2, 1, 0, 0), run=fake_run(exc=FileNotFoundError()))
    assert hw.cpu_cores == 1 and hw.cpu_threads == 1 and hw.platform


@pytest.mark.parametrize(("ram", "vram", "size"), [
    (2, None, "none"), (4, None, "3b"), (7.9, None, "3b"),
    (8, None, "7b"), (16, None, "13b"), (2, 6, "7b"), (2, 10, "13b"), (2, 3, "3b"),
])
def test_size_thresholds(ram, vram, size):
    assert profile(ram, vram).max_model_size() == size


def test_recommendations():
    big = profile(8).recommend_local_models()
    for name in ("dolphin-mistral", "qwen2.5-coder:7b", "minicpm-v", "llama3.2:3b"):
        assert name in big
    assert big[-1] == EMBEDDED_TINY_MODEL and len(big) == len(set(big))
    assert profile(2).recommend_local_models() == [EMBEDDED_TINY_MODEL]
    assert "llama3.2:3b" in profile(4).recommend_local_models()
    assert profile(8).recommend_by_intent()["code"] == "qwen2.5-coder:7b"


def test_parse_nvidia_smi_picks_largest():
    assert parse_nvidia_smi("A, 1024\nB, 4096\n") == ("B", 4.0)
    assert parse_nvidia_smi("") == (None, None)


def test_real_machine_detection_is_sane():
    hw = detect_hardware()
    assert hw.total_ram_gb > 0 and hw.cpu_threads >= hw.cpu_cores >= 1


def test_cli_json_and_table():
    import json

    from typer.testing import CliRunner

    from wilton_core.cli.hardware import app

    r = CliRunner().invoke(app, ["--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["max_model_size"] in ("3b", "7b", "13b", "none") and data["total_ram_gb"] > 0
    assert data["recommended_models"][-1] == EMBEDDED_TINY_MODEL
    r = CliRunner().invoke(app, [])
    assert r.exit_code == 0 and "Largest local model" in r.output
