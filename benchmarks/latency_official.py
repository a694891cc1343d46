"""Official networks' latency from the official 1080Ti/TensorRT table vs the published figure.

Run: python benchmarks/latency_official.py [--shared ../shared]
Prints, for the released student and teacher at 1024x2048: our table walk (network_latency),
the official code's walk (its conv_2x_downup lookup quirk reproduced), the latency stored in the
arch file, and the published whole-network figure where there is one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fasterseg.latency.model import network_latency
from fasterseg.latency.official import import_official, official_search_latency
from fasterseg.nets.official import load_official_arch, official_genotype

PUBLISHED = {"student": 6.13}  # ms, 163.9 FPS, GTX 1080Ti + TensorRT 5.1.5 (paper, table 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[1].parent / "shared"))
    args = ap.parse_args()
    ref = Path(args.shared) / "reference" / "official"
    table = import_official(ref / "official_lut_1080ti_trt5.json")
    print(f"{'network':<8} {'ours ms':>8} {'ours FPS':>9} {'official-walk ms':>17} {'arch-file ms':>13} {'published ms':>13}")
    for role, arch_file in (("student", "arch_1.pt"), ("teacher", "arch_0.pt")):
        arch = load_official_arch(ref / arch_file)
        g = official_genotype(arch, role)
        ours = network_latency(g, table, (1024, 2048))
        quirk = official_search_latency(g, table)
        stored = arch.metrics.get("latency12") if role == "student" and g.ends == (2, 1) else None
        pub = PUBLISHED.get(role)
        print(f"{role:<8} {ours.total_ms:8.3f} {ours.fps:9.1f} {quirk:17.3f} "
              f"{stored if stored is not None else float('nan'):13.3f} {pub if pub else float('nan'):13.2f}")
        print("         parts: " + ", ".join(f"{k} {v:.3f}" for k, v in ours.parts.items()))


if __name__ == "__main__":
    main()
