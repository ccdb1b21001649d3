"""What this machine can run locally: RAM, cores, NVIDIA GPU (seed 002's HardwareDetector).

The GPU is read from `nvidia-smi` rather than PyTorch/CUDA bindings so detection costs one short
subprocess and no heavy dependency. Every I/O root (`psutil_module`, `run`, `platform_name`) is
a parameter of `detect_hardware`, so tests describe a GPU box without owning one.
"""

from __future__ import annotations

import platform as _platform
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = [
    "EMBEDDED_TINY_MODEL",
    "NVIDIA_SMI_ARGS",
    "HardwareProfile",
    "ModelSize",
    "detect_hardware",
    "parse_nvidia_smi",
]

ModelSize = Literal["13b", "7b", "3b", "none"]

NVIDIA_SMI_ARGS: tuple[str, ...] = (
    "nvidia-smi",
    "--query-gpu=name,memory.total",
    "--format=csv,noheader,nounits",
)
# The model the stack embeds (llama.cpp + SmolLM2-135M): runs on anything, so it is what a
# machine too small for a 3B model still gets.
EMBEDDED_TINY_MODEL = "smollm2:135m"

_GIB = 1024**3

# Per size class, the Ollama models recommended for each intent (seed 000 names the 7B set).
_RECOMMENDED: dict[str, dict[str, str]] = {
    "13b": {
        "chat": "dolphin-mistral",
        "code": "qwen2.5-coder:14b",
        "vision": "minicpm-v",
        "general": "qwen2.5:14b",
    },
    "7b": {
        "chat": "dolphin-mistral",
        "code": "qwen2.5-coder:7b",
        "vision": "minicpm-v",
        "general": "llama3.2:3b",
    },
    "3b": {
        "chat": "llama3.2:3b",
        "code": "qwen2.5-coder:3b",
        "vision": "moondream",
        "general": "qwen2.5:3b",
    },
    "none": {"chat": EMBEDDED_TINY_MODEL},
}


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    total_ram_gb: float
    available_ram_gb: float
    cpu_cores: int
    cpu_threads: int
    gpu_name: str | None
    gpu_vram_gb: float | None
    platform: str

    @property
    def _vram(self) -> float:
        return self.gpu_vram_gb or 0.0

    # Thresholds from seed 002: a 4-bit quantised model needs roughly its parameter count in
    # GB of RAM plus headroom, or a bit less when it sits entirely in VRAM.
    @property
    def can_run_3b(self) -> bool:
        return self.total_ram_gb >= 4 or self._vram >= 3

    @property
    def can_run_7b(self) -> bool:
        return self.total_ram_gb >= 8 or self._vram >= 6

    @property
    def can_run_13b(self) -> bool:
        return self.total_ram_gb >= 16 or self._vram >= 10

    def max_model_size(self) -> ModelSize:
        if self.can_run_13b:
            return "13b"
        if self.can_run_7b:
            return "7b"
        if self.can_run_3b:
            return "3b"
        return "none"

    def recommend_by_intent(self) -> dict[str, str]:
        """Ollama model name per intent (chat, code, vision, general) for this machine."""
        return dict(_RECOMMENDED[self.max_model_size()])

    def recommend_local_models(self) -> list[str]:
        """Ollama model names worth pulling here, most useful first, without duplicates."""
        names: list[str] = []
        for name in self.recommend_by_intent().values():
            if name not in names:
                names.append(name)
        if self.max_model_size() in ("13b", "7b") and "llama3.2:3b" not in names:
            names.append("llama3.2:3b")
        if EMBEDDED_TINY_MODEL not in names:
            # Always listed last: the embedded fallback that needs no download from Ollama.
            names.append(EMBEDDED_TINY_MODEL)
        return names

    def summary(self) -> str:
        gpu = f"{self.gpu_name} ({self.gpu_vram_gb:g} GB)" if self.gpu_name else "none"
        return (
            f"RAM: {self.total_ram_gb:g} GB ({self.available_ram_gb:g} GB free) | "
            f"CPU: {self.cpu_cores} cores / {self.cpu_threads} threads | GPU: {gpu} | {self.platform}"
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            can_run_3b=self.can_run_3b,
            can_run_7b=self.can_run_7b,
            can_run_13b=self.can_run_13b,
            max_model_size=self.max_model_size(),
            recommended_models=self.recommend_local_models(),
            recommended_by_intent=self.recommend_by_intent(),
        )
        return d


def parse_nvidia_smi(output: str) -> tuple[str | None, float | None]:
    """(name, VRAM GB) of the largest GPU in `nvidia-smi --format=csv,noheader,nounits` output.

    memory.total comes in MiB. Unparseable lines are skipped rather than failing detection.
    """
    best: tuple[str | None, float | None] = (None, None)
    for line in output.splitlines():
        name, sep, mem = line.rpartition(",")
        if not sep or not name.strip():
            continue
        try:
            vram_gb = round(float(mem.strip()) / 1024, 1)
        except ValueError:
            continue
        if best[1] is None or vram_gb > best[1]:
            best = (name.strip(), vram_gb)
    return best


def _detect_gpu(run: Callable[..., Any]) -> tuple[str | None, float | None]:
    try:
        proc = run(list(NVIDIA_SMI_ARGS), capture_output=True, text=True, timeout=5, check=False)
    except (FileNotFoundError, PermissionError, subprocess.TimeoutExpired, OSError):
        return None, None
    if getattr(proc, "returncode", 1) != 0:
        return None, None
    return parse_nvidia_smi(str(proc.stdout or ""))


def detect_hardware(
    *,
    psutil_module: Any = None,
    run: Callable[..., Any] = subprocess.run,
    platform_name: str | None = None,
) -> HardwareProfile:
    """Profile this machine. `psutil_module` defaults to psutil (imported lazily)."""
    ps = psutil_module
    if ps is None:
        import psutil as ps  # type: ignore[import-untyped,no-redef]
    vm = ps.virtual_memory()
    threads = ps.cpu_count(logical=True) or 1
    cores = ps.cpu_count(logical=False) or threads
    gpu_name, vram = _detect_gpu(run)
    return HardwareProfile(
        total_ram_gb=round(vm.total / _GIB, 1),
        available_ram_gb=round(vm.available / _GIB, 1),
        cpu_cores=int(cores),
        cpu_threads=int(threads),
        gpu_name=gpu_name,
        gpu_vram_gb=vram,
        platform=platform_name or _platform.system() or "unknown",
    )

