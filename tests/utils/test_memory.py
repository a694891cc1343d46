"""keep_freed_memory: glibc serves large blocks from its heap instead of fresh mmaps.

Checked through glibc's own accounting (``mallinfo2().hblkhd``: bytes held in mmapped blocks), in
child processes, since the setting is process-wide and cannot be undone."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import load_benchmark_script

REPO = Path(__file__).resolve().parents[2]

_PROBE = """
import ctypes, ctypes.util, json, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
applied = None
if sys.argv[1] == "keep":
    from fasterseg.utils.memory import keep_freed_memory
    applied = keep_freed_memory()
import torch
block = torch.ones(64 * 2**20 // 4)  # 64 MB, above glibc's largest mmap threshold (32 MB)
held = libc.mallinfo2()
print(json.dumps({"applied": applied, "mmapped": held.hblkhd, "heap": held.arena}))
"""


def _probe(setting: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE, setting], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _glibc_with_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c")), "mallinfo2")
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux") or not _glibc_with_mallinfo2(),
                    reason="glibc >= 2.33 (mallinfo2) is what keep_freed_memory configures and this test reads")
def test_a_large_tensor_comes_from_the_heap_once_kept():
    system, kept = _probe("system"), _probe("keep")
    assert system["mmapped"] >= 64 * 2**20  # glibc's default: its own mmap
    assert kept["applied"] is True
    assert kept["mmapped"] < 2**20 and kept["heap"] >= 64 * 2**20  # served from the heap


def test_training_and_search_turn_it_on_by_default_and_may_turn_it_off():
    from fasterseg.config import load_config
    from fasterseg.search.config import SearchJobConfig
    from fasterseg.train.config import TrainConfig

    assert TrainConfig().keep_freed_memory and SearchJobConfig().keep_freed_memory
    off = load_config(TrainConfig, None, ["keep_freed_memory=false"])
    assert off.keep_freed_memory is False


def test_the_benchmark_times_both_settings_in_processes_of_their_own(capsys):
    script = load_benchmark_script("malloc_speed")
    assert script.main(["--rounds", "1", "--steps", "1", "--warmup", "0", "--batch", "2", "--size", "64x64",
                        "--genotype", str(REPO / script.DEFAULT_GENOTYPE)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| system", "| keep"))]
    assert len(rows) == 2 and rows[0].endswith("| 1.00x |")
    if sys.platform.startswith("linux") and _glibc_with_mallinfo2():  # a glibc that mallopt configures
        assert rows[1].split("|")[2].strip() == "True"
