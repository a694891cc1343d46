"""What a run directory records about where it ran, for reproducibility."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch


def git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo; elsewhere what platform reports)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _installed_version(dist: str) -> str | None:
    """A package's version from its metadata, without importing it (openvino takes a second)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment() -> dict:
    """What a run's or a benchmark's numbers depend on: code, host, CPU/GPU, threads, library
    versions and the load at the moment (the one record every run folder and benchmark keeps)."""
    import os

    import numpy

    import fasterseg

    info = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "fasterseg": fasterseg.__version__,
        "git_commit": git_commit(Path(fasterseg.__file__).resolve().parent),
        "command": sys.argv,
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
    }
    for runtime in ("onnxruntime", "openvino"):
        if (found := _installed_version(runtime)) is not None:
            info[runtime] = found
    info["cuda"] = torch.cuda.is_available()
    if info["cuda"]:
        info["cuda_version"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if hasattr(os, "getloadavg"):
        info["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    return info
