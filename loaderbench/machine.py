"""What machine a result came from: the fingerprint stored beside every result and baseline."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import psutil

from loaderbench import typed

#: Fields of pytest-benchmark's machine_info that change between runs of the same machine (clock
#: speed now, host name): dropped, so that two runs of one runner class compare equal.
VOLATILE_CPU_FIELDS = ("hz_actual", "hz_actual_friendly", "hz_advertised", "hz_advertised_friendly")
VOLATILE_FIELDS = ("node",)
#: Fingerprint fields that decide whether two results came from the same kind of machine, so that
#: their seconds compare. Memory size and driver version are shown when they differ but do not
#: decide: a VM's usable memory moves by a few MB between boots, and a driver update is software.
MACHINE_KIND_FIELDS = ("cpu_model", "usable_cores", "platform", "gpu", "gpu_count")


@dataclass(frozen=True)
class Fingerprint:
    """Stable facts about a machine and its software stack (no clock speeds, no host names), as
    every result and baseline stores them in ``machine_info.loaderbench``: written with all its
    fields, in this order; a field a file lacks (written before it existed) reads as None."""

    cpu_model: str | None = None
    usable_cores: int | None = None
    memory_gb: float | None = None
    python: str | None = None
    platform: str | None = None
    torch: str | None = None
    cuda: str | None = None
    gpu: str | None = None
    gpu_count: int | None = None
    gpu_memory_gb: float | None = None
    cuda_driver: str | None = None

    @classmethod
    def from_dict(cls, data: Any, what: str = "the machine's fingerprint") -> Fingerprint:
        """The stored fingerprint; a typed.Malformed naming the field when it is not one."""
        return typed.read(cls, data, what)

    def to_dict(self) -> dict[str, Any]:
        return typed.write(self)


def usable_cores() -> int:
    """CPUs this process may run on (affinity and cgroup-pinned), not the host's total."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def torch_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": None,
        "gpu_count": 0,
        "gpu_memory_gb": None,
        "cuda_driver": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            gpu=props.name,
            gpu_count=torch.cuda.device_count(),
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            cuda_driver=_cuda_driver_version(),
        )
    return info


def _cuda_driver_version() -> str | None:
    """The NVIDIA driver version as nvidia-smi reports it (torch does not expose it)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):  # informative only: never stops a run
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def fingerprint() -> Fingerprint:
    """This machine's and software stack's Fingerprint."""
    return Fingerprint(
        cpu_model=_cpu_model(),
        usable_cores=usable_cores(),
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1),
        python=platform.python_version(),
        platform=f"{platform.system()}-{platform.machine()}",
        **torch_info(),
    )


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kind_differences(a: Fingerprint, b: Fingerprint) -> list[str]:
    """``field a vs b`` for each machine-kind field two fingerprints disagree on."""
    return [
        f"{key} {getattr(a, key)} vs {getattr(b, key)}"
        for key in MACHINE_KIND_FIELDS
        if getattr(a, key) != getattr(b, key)
    ]


def kind_slug(fp: Fingerprint) -> str:
    """A file-name-safe name of a machine kind: "amd-epyc-2cpu", "...-nvidia-a10g"."""
    parts = [fp.cpu_model or "unknown-cpu", f"{fp.usable_cores}cpu"]
    if fp.gpu:
        parts.append(f"{fp.gpu_count}x-{fp.gpu}")
    words = re.findall(
        r"[a-z0-9.]+", " ".join(parts).lower().replace("(r)", "").replace("(tm)", "")
    )
    return (
        "-".join(w.strip(".") for w in words if w.strip(".") not in ("cpu", "processor"))[:80]
        or "machine"
    )


def scrub(machine_info: dict) -> None:
    """Drop volatile fields from pytest-benchmark's machine_info in place."""
    for key in VOLATILE_FIELDS:
        machine_info.pop(key, None)
    cpu = machine_info.get("cpu")
    if isinstance(cpu, dict):
        for key in VOLATILE_CPU_FIELDS:
            cpu.pop(key, None)
