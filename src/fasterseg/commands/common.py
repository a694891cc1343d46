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


def add_run_arguments(p: argparse.ArgumentParser, config_help: str, set_example: str, resume_help: str) -> None:
    """The options every run-directory command shares (``train``, ``search``): config, overrides,
    where the run goes, and ``--resume``."""
    p.add_argument("--config", help=config_help)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config value, e.g. {set_example} (repeatable)")
    p.add_argument("--name", help="run name (directory under out_dir)")
    p.add_argument("--out-dir", help="where runs are written (default: runs)")
    p.add_argument("--resume", metavar="RUN", help=resume_help)
