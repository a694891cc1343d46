"""``fasterseg lut``: build, show, import and validate latency lookup tables."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from fasterseg.commands.common import parse_size

NAME = "lut"
HELP = "latency lookup tables: build (measure), show, import-official, merge, validate"



def _at_least_3(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 3:
        raise argparse.ArgumentTypeError(f"at least 3 samples are needed to fit and rank, got {value}")
    return value

def _timing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, help="CPU threads for PyTorch / ONNX Runtime (default 1: stable on a shared machine)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs before measuring (default 3)")
    p.add_argument("--repeats", type=int, default=15, help="timed runs; the median is kept (default 15)")


def _clock_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clock", default="wall", choices=("wall", "cpu"),
                   help="CPU backends: wall-clock time, or the process's CPU time (robust on a shared, busy machine)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from fasterseg.backends import TABLE_PRECISIONS, canonical, timing_backend_names

    sub = p.add_subparsers(dest="lut_command", metavar="ACTION", parser_class=type(p))
    sub.required = True

    b = sub.add_parser("build", help="measure every op instance the search space can contain at one input size")
    b.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    b.add_argument("--backend", default="eager", type=canonical, choices=timing_backend_names(),
                   help="how to run each operator (default eager: plain PyTorch)")
    b.add_argument("--precision", default="fp32", choices=TABLE_PRECISIONS)
    b.add_argument("--memory-format", default="contiguous", choices=("contiguous", "channels_last"))
    b.add_argument("--size", type=parse_size, default=(1024, 2048), help="network input HEIGHTxWIDTH (default 1024x2048)")
    b.add_argument("--space", default="default", metavar="default|FILE",
                   help="search space: 'default' (the paper's), a search config (its supernet section is read) "
                        "or a YAML file of supernet settings")
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a space setting, e.g. --set layers=8")
    b.add_argument("--only", default=None, metavar="OPS", help="comma-separated op types to measure (default: all)")
    b.add_argument("--out", required=True, metavar="TABLE.json", help="table to write; an existing one of the same setting is resumed")
    b.add_argument("--no-progress", action="store_true")
    _timing_args(b)
    _clock_arg(b)

    s = sub.add_parser("show", help="describe a table; with --genotype, predict a network's latency")
    s.add_argument("table", metavar="TABLE", help="a table file or a profile name (official-1080ti-trt5)")
    s.add_argument("--genotype", metavar="MODEL_OR_GENOTYPE", help="a genotype .json or model file to predict")
    s.add_argument("--size", type=parse_size, default=None, help="input size for --genotype (default: the table's)")
    s.add_argument("--entries", action="store_true", help="also list every entry")
    s.add_argument("--json", action="store_true", help="machine-readable output")

    i = sub.add_parser("import-official", help="convert the official 1080Ti/TensorRT table to this format")
    i.add_argument("--source", default=None, metavar="official_lut.json",
                   help="the official table as JSON (default: the copy shipped as profile official-1080ti-trt5)")
    i.add_argument("--out", required=True, metavar="TABLE.json")

    m = sub.add_parser("merge", help="merge tables of one setting (later files win where keys repeat)")
    m.add_argument("tables", nargs="+", metavar="TABLE")
    m.add_argument("--out", required=True, metavar="TABLE.json")
    m.add_argument("--force", action="store_true", help="merge even when device/backend/precision/size differ")

    v = sub.add_parser("validate", help="predict vs measure random derived networks: Spearman, MAPE, scatter plot")
    v.add_argument("--lut", required=True, metavar="TABLE", help="table built on this machine (its setting is used to measure)")
    v.add_argument("--samples", type=_at_least_3, default=20, help="random architectures to predict and measure (>= 3)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--size", type=parse_size, default=None, help="input size (default: the table's)")
    v.add_argument("--out-dir", default="runs/lut_validate", metavar="DIR",
                   help="where the scatter PNG and results JSON go (default runs/lut_validate, beside the other runs)")
    v.add_argument("--measure-missing", action="store_true", help="measure entries the table lacks instead of failing")
    v.add_argument("--space", default="default", metavar="default|FILE",
                   help="search space to sample networks from (as for build: default, a search config or supernet settings)")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a space setting")
    v.add_argument("--no-progress", action="store_true")
    _timing_args(v)


def _load_space(args: argparse.Namespace):
    from fasterseg.config import load_config
    from fasterseg.space.config import SupernetConfig

    path = None if args.space == "default" else args.space
    return load_config(SupernetConfig, path, args.overrides, section="supernet")


def run(args: argparse.Namespace) -> int:
    actions = {"build": _build, "show": _show, "import-official": _import, "merge": _merge, "validate": _validate}
    return actions[args.lut_command](args)


def _merge(args: argparse.Namespace) -> int:
    from fasterseg.latency.official import load_table

    merged = load_table(args.tables[0])
    for name in args.tables[1:]:
        merged = merged.merge(load_table(name), force=args.force)
    merged.save(args.out)
    print(f"wrote {args.out}: {len(merged)} entries from {len(args.tables)} table(s)")
    return 0


def _build(args: argparse.Namespace) -> int:
    from fasterseg.latency.lut import OP_TYPES
    from fasterseg.errors import LatencyTableError
    from fasterseg.latency.measure import TimingSettings, build_table, describe_environment, make_timer
    from fasterseg.latency.specs import space_specs

    space = _load_space(args)
    specs = space_specs(space, args.size)
    if args.only:
        wanted = [o.strip() for o in args.only.split(",") if o.strip()]
        bad = [o for o in wanted if o not in OP_TYPES]
        if bad:
            raise LatencyTableError(f"--only: unknown op type(s) {bad}; known: {list(OP_TYPES)}")
        specs = [s for s in specs if s.op in wanted]
    timer = make_timer(args.backend, args.device, args.precision, args.memory_format, args.threads,
                       TimingSettings(args.warmup, args.repeats, clock=args.clock))
    print(f"lut build: {len(specs)} op instances at {args.size[0]}x{args.size[1]} on {timer.device_name()} "
          f"({args.backend}, {args.precision}, {args.memory_format}); {describe_environment()}", file=sys.stderr)
    table = build_table(specs, timer, args.size, args.out, progress=not args.no_progress)
    print(f"wrote {args.out}: {len(table)} entries")
    return 0


def _show(args: argparse.Namespace) -> int:
    from fasterseg.latency.lut import parse_key
    from fasterseg.latency.official import load_table

    table = load_table(args.table)
    counts = Counter(parse_key(k).op for k in table.entries)
    result: dict = {"meta": table.to_dict()["meta"], "entries": len(table), "by_op": dict(sorted(counts.items()))}
    if args.genotype:
        from fasterseg.modelfile import load_genotype
        from fasterseg.latency.model import network_latency

        genotype = load_genotype(args.genotype)
        lat = network_latency(genotype, table, args.size)
        result["network"] = {"source": args.genotype, "latency_ms": lat.total_ms, "fps": lat.fps, "parts_ms": lat.parts,
                             "pieces": [{"piece": p, "key": k, "ms": ms} for p, k, ms in lat.pieces]}
    if args.json:
        if args.entries:
            result["table"] = table.entries
        print(json.dumps(result, indent=2))
        return 0
    m = table.meta
    print(f"{args.table}")
    print(f"  device        {m.device}")
    print(f"  backend       {m.backend} ({m.precision}, {m.memory_format}, batch {m.batch}, threads {m.threads}, clock {m.clock})")
    print(f"  input size    {m.size[0]}x{m.size[1]}")
    print(f"  versions      {', '.join(f'{k} {v}' for k, v in m.versions.items()) or '-'}")
    print(f"  date          {m.date or '-'}")
    if m.source:
        print(f"  source        {m.source}")
    if m.notes:
        print(f"  notes         {m.notes}")
    print(f"  entries       {len(table)}: " + ", ".join(f"{op} {n}" for op, n in sorted(counts.items())))
    if args.entries:
        for k, v in sorted(table.entries.items()):
            print(f"    {k:<48} {v:10.4f} ms")
    if args.genotype:
        net = result["network"]
        print(f"\n{args.genotype}: {net['latency_ms']:.3f} ms ({net['fps']:.1f} FPS) at "
              f"{(args.size or m.size)[0]}x{(args.size or m.size)[1]}")
        for part, ms in net["parts_ms"].items():
            print(f"  {part:<8} {ms:9.3f} ms")
    return 0


def _import(args: argparse.Namespace) -> int:
    from fasterseg.latency.official import import_official, load_profile

    table = import_official(args.source) if args.source else load_profile("official-1080ti-trt5")
    table.save(args.out)
    print(f"wrote {args.out}: {len(table)} entries ({table.meta.device}, {table.meta.backend}, "
          f"{table.meta.size[0]}x{table.meta.size[1]})")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from fasterseg.latency.measure import TimingSettings, timer_for_table
    from fasterseg.latency.official import load_table
    from fasterseg.latency.validate import validate_table

    table = load_table(args.lut)
    settings = TimingSettings(args.warmup, args.repeats)
    timer = timer_for_table(table, settings)
    if args.threads is not None and table.meta.threads is not None and args.threads != table.meta.threads:
        print(f"note: measuring with the table's {table.meta.threads} thread(s), not --threads {args.threads}", file=sys.stderr)
    report = validate_table(table, timer, samples=args.samples, seed=args.seed, size=args.size,
                            out_dir=Path(args.out_dir), space=_load_space(args), measure_missing=args.measure_missing,
                            progress=not args.no_progress)
    print(report.summary())
    return 0
