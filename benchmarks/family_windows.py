"""Which latency windows can a search space's student reach? (issue 30, item 4: the latency family)

A family searches at several FPS windows; a window the student architecture cannot reach makes
the search spend its epochs doubling a latency weight in vain. For each pair of student stem /
head widths, a random-student chain (fasterseg.search.random_students: random architecture
parameters derived by the paper's rules, walking towards the window) looks for a network within
``--tolerance`` of each target table latency; the table says the latency it found, or how close
it came.

    python benchmarks/family_windows.py --config configs/search/camvid_cpu_adam.yaml \
        --lut benchmarks/results/lut/cpu_openvino_bf16_360x480_camvid.json \
        --widths 0.3333:0.5 0.6667:1 1:1 --targets 10.8 21.6 26.8
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def _widths(text: str) -> tuple[float, float]:
    try:
        stem, head = (float(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STEM:HEAD widths such as 0.3333:0.5, got {text!r}") from None
    return stem, head


def reach_table(config: str, lut: str, widths: list[tuple[float, float]], targets: list[float], arch: str = "student",
                tolerance: float = 0.05, max_steps: int = 5000, seed: int = 0, seeds: tuple[int, ...] | None = None,
                params: bool = False) -> str:
    """A markdown table: per stem/head widths of ``arch`` (and per chain seed, with several ``seeds``), the
    table ms found near each target; ``params`` adds the found network's inference parameters, which
    decide whether its model file fits a size limit."""
    from fasterseg.config import load_config
    from fasterseg.latency.official import load_table
    from fasterseg.nets.network import FasterSegNet, count_parameters
    from fasterseg.search.config import SearchJobConfig
    from fasterseg.search.job import LatencyModel
    from fasterseg.search.random_students import WindowUnreachable, sample_students_at_latency

    job = load_config(SearchJobConfig, config, [f"lut={lut}"])
    table = load_table(lut)
    lines = [f"| {arch} stem / head width | " + " | ".join(f"{t:g} ms ({1000 / t:.0f} FPS)" for t in targets) + " |",
             "|---|" + "---|" * len(targets)]
    seeds = tuple(seeds) if seeds else (seed,)
    for stem, head in widths:
        archs = [replace(a, stem_width=stem, head_width=head) if a.name == arch else a for a in job.supernet.archs]
        space = replace(job.supernet, archs=archs)
        model = LatencyModel(table, space, job.latency_size)
        for chain_seed in seeds:
            cells = []
            for target in targets:
                try:
                    found = sample_students_at_latency(space, arch, model.genotype_ms, target, tolerance, count=1,
                                                       seed=chain_seed, mix_steps=1, max_steps=max_steps)[0]
                    size = f" ({count_parameters(FasterSegNet(found.genotype, aux_heads=False)) / 1e6:.2f} M)" if params else ""
                    cells.append(f"{found.latency_ms:.1f}{size}")
                except WindowUnreachable as exc:
                    cells.append(f"no (closest {exc.closest_ms:.1f})")
            label = f"{stem:.2f} / {head:.2f}" + (f" (seed {chain_seed})" if len(seeds) > 1 else "")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="search config (its space, latency size)")
    p.add_argument("--lut", required=True, help="latency table file or profile")
    p.add_argument("--widths", nargs="+", type=_widths, required=True, help="student STEM:HEAD widths to try")
    p.add_argument("--targets", nargs="+", type=float, required=True, help="target table latencies (ms)")
    p.add_argument("--arch", default="student", help="the architecture of the space whose widths change")
    p.add_argument("--tolerance", type=float, default=0.05, help="window half-width, a fraction of the target")
    p.add_argument("--max-steps", type=int, default=5000, help="proposals before a window counts as unreachable")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="chain seeds: a row per seed with several")
    p.add_argument("--params", action="store_true", help="also give each found network's inference parameters")
    args = p.parse_args(argv)
    sys.stdout.write(reach_table(args.config, args.lut, args.widths, args.targets, args.arch, args.tolerance,
                                 args.max_steps, seeds=tuple(args.seeds), params=args.params))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
