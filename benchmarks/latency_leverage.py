"""Which architecture parameters set a derived student's latency, and which ones the latency term pushes
(issue 30: why the small family member's search missed its FPS window while its latency weight rose 128-fold).

Two readings of one search space, from random architecture parameters (each entry a standard normal, as
the random students of ``fasterseg.search.random_students`` draw them):

* **leverage**: how much the *derived* student's table latency (the paper's derivation rules, the network
  the search returns) moves when one group of parameters (alphas: operators and skips; betas: where a
  branch goes down; ratios: widths) is redrawn and the others are kept: the mean absolute change in ms.
* **push**: the share of the latency term's gradient that reaches each group (the norm of the gradient
  of the decoupled term, the paper's split, or the coupled one), at the same random parameters.

A group with leverage but no push cannot be moved by the latency weight; the push follows the term's
split, not the derivation.

    python benchmarks/latency_leverage.py --config configs/search/camvid_cpu_family_small.yaml \
        --lut benchmarks/results/lut/cpu_openvino_bf16_360x480_camvid.json
"""

from __future__ import annotations

import argparse
import statistics
import sys

GROUPS = ("alphas", "betas", "ratios")


def _derived_ms(params, space, spec, ends, latency_of) -> float | None:
    from fasterseg.nets.derive import derive_genotype

    try:
        genotype = derive_genotype(params, ends, space.width_choices, spec.stem_width, spec.head_width,
                                   num_classes=space.num_classes, base_channels=space.base_channels,
                                   ignore_skip=spec.ignore_skip)
    except ValueError:  # pruned below a branch's minimum depth: no network
        return None
    return float(latency_of(genotype))


def leverage(space, arch: str, latency_of, bases: int, redraws: int, seed: int) -> dict[str, dict[str, float]]:
    """Per pairing ("8_32", "16_32") and group: the mean |change| of the derived latency (ms) when that
    group alone is redrawn, over ``bases`` random states and ``redraws`` redraws each; plus the spread
    (standard deviation) of the derived latency over the random states themselves ("all")."""
    import torch

    from fasterseg.search.random_students import random_arch_params

    spec = space.arch(arch)
    num_widths = len(space.width_choices) if spec.search_width else 1
    g = torch.Generator().manual_seed(seed)
    out: dict[str, dict[str, float]] = {}
    for name, ends in (("8_32", (2, 0)), ("16_32", (2, 1))):
        changes: dict[str, list[float]] = {k: [] for k in GROUPS}
        values: list[float] = []
        for _ in range(bases):
            base = random_arch_params(space, num_widths, g)
            ms = _derived_ms(base, space, spec, ends, latency_of)
            while ms is None:
                base = random_arch_params(space, num_widths, g)
                ms = _derived_ms(base, space, spec, ends, latency_of)
            values.append(ms)
            for group in GROUPS:
                for _ in range(redraws):
                    other = random_arch_params(space, num_widths, g)
                    trial = base.clone()
                    setattr(trial, group, getattr(other, group))
                    moved = _derived_ms(trial, space, spec, ends, latency_of)
                    if moved is not None:
                        changes[group].append(abs(moved - ms))
        out[name] = {k: statistics.fmean(v) if v else float("nan") for k, v in changes.items()}
        out[name]["all"] = statistics.pstdev(values)
    return out


def push(space, arch: str, lut, terms: str, states: int, seed: int, split: tuple[float, ...] = ()) -> dict[str, float]:
    """The share of the latency term's gradient norm (summed over ``states`` random states) that each
    group receives, with hard one-hot width samples as the search draws them; ``split``: the decoupled
    terms' weights (the search's ``latency_split``; (): the paper's)."""
    import torch

    from fasterseg.latency.model import decoupled_latency, fixed_ratios, supernet_latency
    from fasterseg.search.job import split_weights
    from fasterseg.search.random_students import random_arch_params

    spec = space.arch(arch)
    num_widths = len(space.width_choices) if spec.search_width else 1
    g = torch.Generator().manual_seed(seed)
    norms = dict.fromkeys(GROUPS, 0.0)
    for _ in range(states):
        p = random_arch_params(space, num_widths, g)
        alphas = [a.requires_grad_() for a in p.alphas]
        betas = [None if b is None else b.requires_grad_() for b in p.betas]
        if spec.search_width:  # a hard sample of each width row, straight through to its logits
            logits = [r.requires_grad_() for r in p.ratios]
            ratios = [torch.nn.functional.gumbel_softmax(r, hard=True) for r in logits]
        else:
            logits, ratios = [], None
        if terms == "decoupled":
            total = decoupled_latency(lut, alphas, betas, ratios, weights=split_weights(split, ratios is not None))
        else:
            total = supernet_latency(lut, alphas, betas, ratios if ratios is not None else fixed_ratios(space))
        total.backward()
        grads = {"alphas": alphas, "betas": [b for b in betas if b is not None], "ratios": logits}
        for group, tensors in grads.items():
            norms[group] += float(sum((t.grad.double() ** 2).sum() for t in tensors) ** 0.5) if tensors else 0.0
    whole = sum(norms.values()) or 1.0
    return {k: v / whole for k, v in norms.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="search config (its supernet and latency_size)")
    parser.add_argument("--lut", help="latency table (default: the config's)")
    parser.add_argument("--arch", default="student")
    parser.add_argument("--bases", type=int, default=40, help="random states the leverage is read at")
    parser.add_argument("--redraws", type=int, default=10, help="redraws of each group per state")
    parser.add_argument("--states", type=int, default=20, help="random states the push is read at")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--splits", nargs="*", default=[], metavar="A,B,G",
                        help="further weights of the decoupled terms (ops, down-sampling, widths) to read the push of")
    args = parser.parse_args(argv)

    from fasterseg.config import load_config
    from fasterseg.latency.official import load_table
    from fasterseg.search.config import SearchJobConfig
    from fasterseg.search.job import LatencyModel

    job = load_config(SearchJobConfig, args.config, [f"lut={args.lut}"] if args.lut else [])
    model = LatencyModel(load_table(job.lut), job.supernet, job.latency_size)
    space, lut = job.supernet, model.luts[args.arch]
    lev = leverage(space, args.arch, model.genotype_ms, args.bases, args.redraws, args.seed)
    shares = {terms: push(space, args.arch, lut, terms, args.states, args.seed) for terms in ("decoupled", "coupled")}
    for text in args.splits:
        split = tuple(float(v) for v in text.split(","))
        shares[f"decoupled {text}"] = push(space, args.arch, lut, "decoupled", args.states, args.seed, split)
    size = "x".join(str(v) for v in job.latency_size)
    print(f"{args.config} ({space.layers} layers, {args.arch}), table {job.lut} at {size}; "
          f"{args.bases} random states x {args.redraws} redraws, push over {args.states} states\n")
    print("| what | alphas (ops, skips) | betas (down-sampling) | ratios (widths) | spread of the derived ms |")
    print("|---|---|---|---|---|")
    for name, row in lev.items():
        print(f"| leverage on the {name.replace('_', '+')} student: mean change of its table ms | "
              + " | ".join(f"{row[k]:.2f}" for k in GROUPS) + f" | {row['all']:.2f} |")
    for terms, row in shares.items():
        print(f"| push: share of the {terms} term's gradient | " + " | ".join(f"{100 * row[k]:.1f}%" for k in GROUPS)
              + " | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
