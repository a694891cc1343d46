"""Does the search beat random students of the same latency? (issue 30, item 3)

Three steps over one finished search run (its config, latency table, supernet and student):

  sample  RUN --out DIR [--count 4]   random students within 5% of the searched student's table
                                      latency (random architecture parameters, derived by the
                                      paper's rules; fasterseg.search.random_students), written as
                                      DIR/random_K.json (+ .arch.json), beside DIR/searched.json
  rank    RUN --out DIR               each student's one-shot score: the supernet computing that one
                                      network, batch norms re-estimated, on the search's val split
                                      -> DIR/supernet_scores.csv
  table   --out DIR --runs RUNS       the trained scores (runs RUNS/rvs_NAME, trained by
                                      benchmarks/random_vs_searched.sh, or the logs it keeps as
                                      DIR/rvs_NAME_epochs.csv: mean of the last three
                                      evaluations on seq_val), the random mean and spread, the
                                      searched student, and Kendall's tau between the supernet's
                                      ranking and the trained one -> DIR/table.md
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np


def kendall_tau(x, y) -> float:
    """Kendall's tau-b (ties counted in neither concordant nor discordant pairs)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denominator = np.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return float((concordant - discordant) / denominator) if denominator else float("nan")


def _job(run: Path):
    from fasterseg.config import load_config
    from fasterseg.search.config import SearchJobConfig

    return load_config(SearchJobConfig, run / "config.yaml")


def _latency_model(job):
    from fasterseg.latency.official import load_table
    from fasterseg.search.job import LatencyModel

    return LatencyModel(load_table(job.lut), job.supernet, job.latency_size)


def _student_arch(job) -> str:
    return job.supernet.archs[-1].name


def sample(args) -> None:
    from fasterseg.genotype import Genotype
    from fasterseg.search.random_students import params_to_dict, sample_students_at_latency

    run, out = Path(args.run), Path(args.out)
    job = _job(run)
    arch = _student_arch(job)
    model = _latency_model(job)
    searched = Genotype.load(run / f"{arch}.json")
    target = model.genotype_ms(searched)
    out.mkdir(parents=True, exist_ok=True)
    searched.save(out / "searched.json")
    arch_params = json.loads((run / "search" / "arch.json").read_text())[arch]
    (out / "searched.arch.json").write_text(json.dumps(arch_params) + "\n")
    students = sample_students_at_latency(job.supernet, arch, model.genotype_ms, target, args.tolerance, args.count,
                                          seed=args.seed)
    rows = [{"name": "searched", "latency_ms": target, "ends": list(searched.ends), "steps": ""}]
    for k, s in enumerate(students):
        s.genotype.save(out / f"random_{k}.json")
        (out / f"random_{k}.arch.json").write_text(json.dumps(params_to_dict(s.params)) + "\n")
        rows.append({"name": f"random_{k}", "latency_ms": s.latency_ms, "ends": list(s.genotype.ends), "steps": s.steps})
    with (out / "students.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for r in rows:
        print(f"{r['name']:>10}: {r['latency_ms']:.2f} ms, ends {r['ends']}")


def rank(args) -> None:
    import torch
    from safetensors.torch import load_file
    from torch.utils.data import Subset

    from fasterseg.data.registry import build_dataset
    from fasterseg.data.transforms import EvalTransform
    from fasterseg.search.data import SearchTransform
    from fasterseg.search.random_students import params_from_dict, score_in_supernet
    from fasterseg.space.supernet import OUTPUT_NAMES, Supernet

    torch.set_num_threads(args.threads)
    run, out = Path(args.run), Path(args.out)
    job = _job(run)
    arch = _student_arch(job)
    net = Supernet(job.supernet)
    net.load_state_dict(load_file(str(run / "search" / "weights.safetensors")))
    phase = job.search
    val = build_dataset(job.data, job.val_split, EvalTransform(downsample=phase.downsample))
    val = Subset(val, range(min(phase.val_limit or len(val), len(val))))
    split = job.train_split if isinstance(job.train_split, str) else job.train_split[0]
    train = build_dataset(job.data, split)
    transform = SearchTransform(phase.crop, phase.scales, phase.downsample)
    g = torch.Generator().manual_seed(args.seed)
    calibration = []
    for _ in range(args.bn_batches):
        crops = [transform(*train[int(torch.randint(len(train), (1,), generator=g))], g) for _ in range(phase.batch_size)]
        calibration.append((torch.stack([c[0] for c in crops]), None))
    rows = []
    names = ["searched"] + sorted(p.stem for p in out.glob("random_*.json") if not p.stem.endswith(".arch"))
    for name in names:
        params = params_from_dict(json.loads((out / f"{name}.arch.json").read_text()))
        genotype = json.loads((out / f"{name}.json").read_text())
        pairing = "8_32" if genotype["branches"][1]["end"] == 0 else "16_32"
        scores = score_in_supernet(net, arch, params, val, calibration, seed=args.seed)
        rows.append({"name": name, "pairing": pairing, "supernet_miou": scores[OUTPUT_NAMES.index(pairing)],
                     **{f"miou_{o}": s for o, s in zip(OUTPUT_NAMES, scores)}})
        print(f"{name:>10}: supernet {100 * rows[-1]['supernet_miou']:.1f} mIoU ({pairing})", flush=True)
    with (out / "supernet_scores.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def trained_score(run: Path, last: int = 3, kept: Path | None = None) -> float | None:
    """Mean of the last ``last`` evaluations of a training run (less noisy than one), from its
    folder, else from ``kept`` (the log the chain commits once the run finishes)."""
    path = run / "epochs.csv"
    if not path.is_file() and kept is not None:
        path = kept
    if not path.is_file():
        return None
    scores = [float(r["val_mIoU"]) for r in csv.DictReader(path.open()) if r.get("val_mIoU")]
    return float(np.mean(scores[-last:])) if len(scores) >= last else None


def table(args) -> None:
    out, runs = Path(args.out), Path(args.runs)
    latency = {r["name"]: float(r["latency_ms"]) for r in csv.DictReader((out / "students.csv").open())}
    one_shot = {}
    if (out / "supernet_scores.csv").is_file():
        one_shot = {r["name"]: float(r["supernet_miou"]) for r in csv.DictReader((out / "supernet_scores.csv").open())}
    trained = {name: trained_score(runs / f"rvs_{name}", kept=out / f"rvs_{name}_epochs.csv") for name in latency}
    lines = ["| student | table ms | supernet mIoU | trained mIoU (seq_val) |", "|---|---|---|---|"]
    for name in latency:
        s = one_shot.get(name)
        t = trained[name]
        lines.append(f"| {name} | {latency[name]:.2f} | {'' if s is None else f'{100 * s:.1f}'} | "
                     f"{'not trained' if t is None else f'{100 * t:.1f}'} |")
    randoms = [trained[n] for n in latency if n != "searched" and trained[n] is not None]
    if randoms:
        lines.append(f"\nRandom students: {100 * np.mean(randoms):.1f} mean, {100 * np.std(randoms, ddof=1) if len(randoms) > 1 else 0:.1f} "
                     f"standard deviation (n={len(randoms)}), {100 * min(randoms):.1f} to {100 * max(randoms):.1f}.")
    if trained.get("searched") is not None:
        lines.append(f"Searched student: {100 * trained['searched']:.1f}.")
    both = [n for n in latency if trained[n] is not None and n in one_shot]
    if len(both) >= 3:
        tau = kendall_tau([one_shot[n] for n in both], [trained[n] for n in both])
        lines.append(f"Kendall tau, supernet ranking vs trained ranking: {tau:.2f} (n={len(both)}).")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    print(text, end="")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="step", required=True)
    s, r = sub.add_parser("sample"), sub.add_parser("rank")
    for step in (s, r):  # both read a search run and write into --out
        step.add_argument("run")
        step.add_argument("--out", required=True)
        step.add_argument("--seed", type=int, default=0)
    s.add_argument("--count", type=int, default=4)
    s.add_argument("--tolerance", type=float, default=0.05)
    r.add_argument("--bn-batches", type=int, default=8)
    r.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("table")
    t.add_argument("--out", required=True)
    t.add_argument("--runs", default="runs")
    args = p.parse_args()
    {"sample": sample, "rank": rank, "table": table}[args.step](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
