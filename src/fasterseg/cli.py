"""The ``fasterseg`` command: parse arguments, call one library function, print."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from fasterseg import __version__
from fasterseg.errors import FasterSegError

# Subcommand modules under fasterseg.commands, in the order --help lists them.
COMMAND_MODULES = (
    "demo",
    "info",
    "import_official",
    "search",
    "train",
    "lut",
    "data",
    "eval",
    "config",
    "predict",
    "export",
    "bench",
    "serve",
)


class _Parser(argparse.ArgumentParser):
    """Bad usage: one line naming the problem, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fasterseg", allow_abbrev=False, description="FasterSeg: search, train, evaluate and deploy real-time segmentation networks.")
    parser.add_argument("--version", action="version", version=f"fasterseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(f"fasterseg.commands.{module_name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP, allow_abbrev=False)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _name_builtin_models(args)
        return int(args._run(args) or 0)
    except FasterSegError as exc:
        print(f"fasterseg {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a full disk, a read-only folder, a file where a folder goes: one line, not a traceback
        print(f"fasterseg {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def describe_os_error(exc: OSError) -> str:
    """``PATH: what went wrong`` for an operating-system error, saying so plainly when the disk is full."""
    import errno

    what = "no space left on the device" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    where = exc.filename or ""
    if exc.filename2:
        where = f"{where} -> {exc.filename2}"
    return f"{where}: {what}" if where else what


# the arguments that take a model file (info's is its positional source)
MODEL_ARGUMENTS = ("model", "init", "teacher", "genotype", "source")


def _name_builtin_models(args: argparse.Namespace) -> None:
    """Let every model argument take a built-in model's short name (``--model camvid``)."""
    from fasterseg.models import resolve_model_name

    for name in MODEL_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, resolve_model_name(value))
        elif isinstance(value, list):
            setattr(args, name, [resolve_model_name(v) if isinstance(v, str) else v for v in value])


if __name__ == "__main__":
    sys.exit(main())
