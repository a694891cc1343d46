"""Argument types shared by subcommands."""

from __future__ import annotations

import argparse
import re


def parse_size(text: str) -> tuple[int, int]:
    """'1024x2048' -> (1024, 2048): height x width, both positive."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH (e.g. 1024x2048), got {text!r}")
    return int(m.group(1)), int(m.group(2))
