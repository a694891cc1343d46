"""Arguments, argument types and run-config loading shared by subcommands."""

from __future__ import annotations

import argparse
import re
from pathlib import Path


def parse_size(text: str) -> tuple[int, int]:
    """'1024x2048' -> (1024, 2048): height x width, both positive."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH (e.g. 1024x2048), got {text!r}")
    return int(m.group(1)), int(m.group(2))


def device_name(text: str) -> str:
    """A torch device name (``cpu``, ``cuda``, ``cuda:1``), checked when parsed, without importing
    torch (argparse also runs this on the default, and --help must stay torch-free)."""
    if not re.fullmatch(r"(cpu|cuda|mps|xpu)(:\d+)?", text.strip()):
        raise argparse.ArgumentTypeError(f"not a device: {text!r} (cpu, cuda or cuda:N)")
    return text.strip()


def positive_float(text: str) -> float:
    """A number above zero (a scale, a rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def add_run_arguments(p: argparse.ArgumentParser, config_help: str, set_example: str, resume_help: str) -> None:
    """The options every run-directory command shares (``train``, ``search``): config, overrides,
    where the run goes, and ``--resume``."""
    p.add_argument("--config", help=config_help)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override a config value, e.g. {set_example} (repeatable)")
    p.add_argument("--name", help="run name (directory under out_dir)")
    p.add_argument("--out-dir", help="where runs are written (default: runs)")
    p.add_argument("--resume", metavar="RUN", help=resume_help)


def load_run_config(cls, args: argparse.Namespace, flag_keys: dict[str, str], kind: str):
    """The config of a ``train`` or ``search`` run: defaults, ``--config``, the command's own flags
    (``flag_keys``: argument name -> config key), ``--name``/``--out-dir``, then ``--set``. With
    ``--resume RUN``: the run's saved ``config.yaml`` with ``--set`` on top; flags that would
    change what the run is are refused rather than silently ignored."""
    from fasterseg.config import load_config
    from fasterseg.errors import ConfigError

    overrides = list(args.overrides)
    if args.resume:
        run_dir = Path(args.resume)
        if not (run_dir / "config.yaml").is_file():
            raise ConfigError(f"{run_dir}: not a {kind} run (no config.yaml)")
        given = ["--" + flag.replace("_", "-") for flag in ("config", *flag_keys) if getattr(args, flag)]
        if given:
            raise ConfigError(f"--resume continues a {kind} run with its own config; {', '.join(given)} cannot change it "
                              "(change settings with --set)")
        return load_config(cls, run_dir / "config.yaml", overrides + [f"name={run_dir.name}", f"out_dir={run_dir.parent}"])
    for flag, key in {**flag_keys, "name": "name", "out_dir": "out_dir"}.items():
        value = getattr(args, flag)
        if value:
            overrides.append(f"{key}={value}")
    return load_config(cls, args.config, overrides)


def add_calibration_arguments(p: argparse.ArgumentParser) -> None:
    """``--calib`` and friends: the images an int8 path measures its activation ranges on."""
    p.add_argument("--calib", metavar="DATA", default=None,
                   help="int8: dataset spec KIND:PATH whose images calibrate the activation ranges "
                        "(the data the model was trained for; needed for --precision int8)")
    p.add_argument("--calib-split", default="train", metavar="SPLIT", help="int8: split of --calib to draw from (default train)")
    from fasterseg.infer.quantize import DEFAULT_CALIBRATION_IMAGES as default

    p.add_argument("--calib-images", type=int, default=default, metavar="N",
                   help=f"int8: calibration images, spread evenly over the split (default {default})")


def calibration_from_args(args: argparse.Namespace, num_classes: int, size: tuple[int, int] | None = None):
    """The calibration images ``--calib`` names, or None when int8 is not asked for."""
    precisions = args.precision if isinstance(args.precision, list) else [args.precision]
    if "int8" not in precisions:
        return None
    if not args.calib:
        from fasterseg.errors import CalibrationError

        raise CalibrationError("--precision int8 needs calibration images: pass --calib DATA (e.g. camvid:PATH), "
                               "the data the model was trained for")
    from fasterseg.infer.quantize import calibration_set

    return calibration_set(args.calib, args.calib_split, args.calib_images, num_classes, size)


def add_label_path_argument(p: argparse.ArgumentParser, default: str) -> None:
    """``--label-path``: how the deploy path makes labels from the 1/8 class scores."""
    from fasterseg.backends import LABEL_PATHS

    p.add_argument("--label-path", choices=LABEL_PATHS, default=default,
                   help=f"labels from the class scores: exact (resized to the input size, then argmax), half or quarter "
                        f"(argmax at 1/2 or 1/4 of it, each label repeated over its block: a fraction of the cost, "
                        f"within 0.1 mIoU on inputs 360 pixels high or more; under that, half scores as exact and "
                        f"quarter about 0.35 lower), or auto (quarter from 360 rows, half under; an exported graph "
                        f"takes the one its --size picks) (default {default})")
