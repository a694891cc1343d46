"""``fasterseg bench``: latency and FPS of one or more deploy paths, one table line each.

Several ``--model`` arguments time the networks side by side: every round runs every network on
every path once, so a load change on a shared machine slows them all alike instead of showing up
as a speed difference between networks timed one after the other.
"""

from __future__ import annotations

import argparse
import sys

from fasterseg.commands.common import add_calibration_arguments, calibration_from_args, device_name, parse_size

NAME = "bench"
HELP = "time deploy paths (eager, optimized, onnxruntime, openvino, tensorrt; fp32/fp16/bf16/int8): median/p90 latency and FPS"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fasterseg.backends import PRECISION_NAMES, backend_names, canonical

    p.add_argument("--model", required=True, action="append", metavar="MODEL_OR_GENOTYPE",
                   help="a .safetensors model file, or a genotype .json or a registered network's name such as "
                        "ddrnet23_slim (ddrnet23_slim:11 for 11 classes; timed with random weights); repeat it to "
                        "time several networks side by side in the same rounds")
    p.add_argument("--size", type=parse_size, default=(1024, 2048), help="input HEIGHTxWIDTH (default 1024x2048)")
    p.add_argument("--batch", type=int, default=1, help="images per batch (default 1)")
    p.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--backend", nargs="+", type=canonical, choices=backend_names(), default=["eager", "optimized", "onnxruntime"],
                   help="one or more backends, each timed in turn (default: eager optimized onnxruntime)")
    p.add_argument("--precision", nargs="+", choices=PRECISION_NAMES, default=["fp32"],
                   help="one or more precisions; each backend runs those it supports (eager: fp32 only; default fp32)")
    add_calibration_arguments(p)
    p.add_argument("--no-compile", dest="compile", action="store_false", help="optimized backend without torch.compile")
    p.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false", help="optimized CUDA backend without CUDA graphs")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch and ONNX Runtime (default: all cores)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before timing (default 3)")
    p.add_argument("--repeats", type=int, default=20, help="timed runs (default 20)")
    p.add_argument("--no-model-only", dest="model_only", action="store_false", help="skip the model-only timing")
    p.add_argument("--json", action="store_true", help="print results and environment as JSON")
    from fasterseg.backends import DEFAULT_LABEL_PATH
    from fasterseg.commands.common import add_label_path_argument

    add_label_path_argument(p, DEFAULT_LABEL_PATH)


def option_list(args: argparse.Namespace, calibration=None):
    """eager always in fp32 (it is the reference); every other backend once per asked precision
    it supports (fp32 where it supports none of them)."""
    from fasterseg.backends import entry
    from fasterseg.infer.runners import RunnerOptions

    options = []
    for backend in args.backend:
        supported = entry(backend).precisions
        precisions = ["fp32"] if backend == "eager" else [p for p in args.precision if p in supported] or ["fp32"]
        for precision in precisions:
            options.append(RunnerOptions(backend=backend, device=args.device, precision=precision,
                                         compile=args.compile, cuda_graphs=args.cuda_graphs, threads=args.threads,
                                         calibration=calibration if precision == "int8" else None,
                                         label_path=getattr(args, "label_path", "exact")))
    return options


def run(args: argparse.Namespace) -> int:
    from fasterseg.errors import FasterSegError
    from fasterseg.infer.bench import bench_models, format_table, rows_to_json
    from fasterseg.utils.env import environment
    from fasterseg.modelfile import load_network

    if args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        raise FasterSegError("--batch and --repeats must be >= 1 and --warmup >= 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    models = {path: load_network(path) for path in dict.fromkeys(args.model)}
    classes = {model.num_classes for model in models.values()}
    if len(classes) > 1 and "int8" in args.precision:
        raise FasterSegError(f"--precision int8 calibrates for one class count, but the models have {sorted(classes)}: "
                             "bench them one at a time")
    calibration = calibration_from_args(args, classes.pop())
    timed = bench_models(models, option_list(args, calibration), tuple(args.size), batch=args.batch,
                         warmup=args.warmup, repeats=args.repeats, model_only=args.model_only,
                         progress=lambda line: print(line, file=sys.stderr))
    env = environment()
    if args.json:
        print(rows_to_json(timed, env))
    else:
        print(f"{', '.join(models)} on {env['cpu'] if args.device == 'cpu' else env.get('gpu', args.device)}, "
              f"{env['torch_threads']} threads, torch {env['torch']}, {env['date']}, load {env.get('load_avg')}")
        print(format_table(timed))
    return 0 if all(any(r.end_to_end for r in rows) for rows in timed.values()) else 1
