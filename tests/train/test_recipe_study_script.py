"""benchmarks/recipe_study.py: the study's table from per-epoch logs, checked by hand."""

import sys
from pathlib import Path

from tests.helpers import load_benchmark_script

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "recipe_study.py"
study = load_benchmark_script("recipe_study")

HEADER = "epoch,loss,lr,seconds,val_mIoU,val_pixel_accuracy,val_mIoU_ema\n"


def _log(path: Path, scores: dict[int, float], averaged: dict[int, float] | None = None, epochs: int = 100) -> None:
    rows = [f"{e},0.3,0.001,25,{scores.get(e, '')},,{(averaged or {}).get(e, '')}" for e in range(1, epochs + 1)]
    path.write_text(HEADER + "\n".join(rows) + "\n")


def test_arms_compare_the_mean_of_their_last_three_evaluations(tmp_path):
    _log(tmp_path / "camvid_arm_base_epochs.csv", {80: 0.38, 90: 0.39, 100: 0.40})
    _log(tmp_path / "camvid_arm_ohem_epochs.csv", {80: 0.40, 90: 0.41, 100: 0.45})
    _log(tmp_path / "camvid_arm_sgd_epochs.csv", {80: 0.30, 90: 0.31}, epochs=95)  # still running
    arms = study.read_logs(tmp_path, "camvid_arm_", study.ARMS)
    assert [a.name for a in arms] == ["base", "ohem", "sgd"]  # the study's order, not the files'
    rows = {r.split(" | ")[0].lstrip("| "): r for r in study.arms_table(arms).splitlines()[2:]}
    assert rows["base"].endswith("| 39.0 |  |")
    assert rows["ohem"].endswith("| 42.0 | +3.0 |")  # (40 + 41 + 45) / 3 = 42.0, base 39.0
    assert rows["sgd"].endswith("| (running) |  |")  # two evaluations: no mean, no comparison


def test_void_averaged_scores_stay_out_and_the_plot_is_written(tmp_path):
    _log(tmp_path / "camvid_scratch_noaux_epochs.csv", {420: 0.41, 440: 0.429, 460: 0.429, 480: 0.41},
         averaged={440: 0.028, 460: 0.33, 480: 0.422}, epochs=490)
    assert study.main(["--results", str(tmp_path), "--plot", str(tmp_path / "study.png"),
                       "--table", str(tmp_path / "study.md")]) == 0
    table = (tmp_path / "study.md").read_text()
    assert "| 440 | 42.9 |  |" in table and "| 480 | 41.0 | 42.2 |" in table
    assert (tmp_path / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))


def test_seeds_are_averaged_and_compared_with_base_over_its_own_seeds(tmp_path):
    _log(tmp_path / "camvid_arm_base_epochs.csv", {80: 0.38, 90: 0.39, 100: 0.40})      # 39.0
    _log(tmp_path / "camvid_arm_base_s1_epochs.csv", {80: 0.36, 90: 0.37, 100: 0.38})   # 37.0
    _log(tmp_path / "camvid_arm_cutmix_epochs.csv", {80: 0.40, 90: 0.40, 100: 0.40})    # 40.0
    _log(tmp_path / "camvid_arm_cutmix_s1_epochs.csv", {80: 0.39, 90: 0.39, 100: 0.39}) # 39.0
    _log(tmp_path / "camvid_arm_quarter_epochs.csv", {80: 0.41, 90: 0.41, 100: 0.41})
    _log(tmp_path / "camvid_arm_quarter_s1_epochs.csv", {80: 0.30}, epochs=85)  # unfinished: one seed, no row
    table = study.seeds_table(study.read_logs(tmp_path, "camvid_arm_", study.ARMS))
    rows = {r.split(" | ")[0].lstrip("| "): r for r in table.splitlines()[2:]}
    assert set(rows) == {"base", "cutmix"}
    assert rows["base"] == "| base | 0, 1 | 39.0 / 37.0 | 38.0 |  |"
    assert rows["cutmix"] == "| cutmix | 0, 1 | 40.0 / 39.0 | 39.5 | +1.5 |"  # 39.5 - (39 + 37) / 2
    assert study.seeds_table(study.read_logs(tmp_path, "camvid_arm_q", study.ARMS)) == ""


def test_the_chain_runs_from_a_copy_and_names_an_unknown_step(tmp_path):
    """The recipe chain re-executes a copy of itself (so its file can be edited while it runs), from
    the repository root, leaves no copy behind, and refuses a step it does not know by name."""
    import os
    import subprocess

    chain = SCRIPT.parent / "camvid_recipe_chain.sh"
    env = {**os.environ, "TMPDIR": str(tmp_path), "FASTERSEG": "/bin/false"}
    done = subprocess.run(["bash", str(chain), str(tmp_path / "runs"), "nosuchstep"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2 and "unknown step 'nosuchstep'" in done.stderr
    assert "== nosuchstep" in done.stdout
    assert not list(tmp_path.glob("camvid_recipe_chain.*"))


def test_the_chain_ships_only_finished_runs(tmp_path):
    """`ship` packages the built-in model only from finished runs: with the held-out run unfinished
    it names that run and stops before scoring or writing anything."""
    import os
    import subprocess

    chain = SCRIPT.parent / "camvid_recipe_chain.sh"
    runs = tmp_path / "runs"
    (runs / "camvid_final_small").mkdir(parents=True)
    (runs / "camvid_final_small" / "metrics.json").write_text("{}")
    (runs / "camvid_recipe_seqtrain").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path), "FASTERSEG": "/bin/false"}
    done = subprocess.run(["bash", str(chain), str(runs), "ship"], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 2
    assert f"{runs}/camvid_recipe_seqtrain has not finished" in done.stderr
    assert sorted(p.name for p in runs.iterdir()) == ["camvid_final_small", "camvid_recipe_seqtrain"]


def test_pack_carries_a_split_checkpoint_whole(tmp_path):
    """`pack` copies an unfinished run's compact checkpoint with every part of it (a network too
    large for one 10 MB file), renamed after the run, where the next session continues from it."""
    import os
    import subprocess

    import torch

    from fasterseg.train.compact import RunRecord, TrainState, compact_files, read_compact, save_compact

    layer = torch.nn.Linear(1000, 10, bias=False)
    state = TrainState(model=layer.state_dict(), optimizer={"state": {}, "param_groups": []}, scaler={}, epoch=9,
                       best_miou=None, history=[], rng_cpu=torch.get_rng_state())
    repo = SCRIPT.parents[1]
    work = tmp_path / "repo"
    (work / "benchmarks").mkdir(parents=True)
    (work / "scripts").mkdir()
    for name in ("camvid_recipe_chain.sh", "lib.sh"):
        (work / "benchmarks" / name).write_text((repo / "benchmarks" / name).read_text())
    (work / "scripts" / "copy_compact.py").write_text((repo / "scripts" / "copy_compact.py").read_text())
    run = work / "runs" / "camvid_arm_quarter_s1"
    save_compact(run / "compact.safetensors", state, RunRecord(config={}, genotype=None, init=None), max_mb=0.008)
    (run / "epochs.csv").write_text("epoch,loss\n9,0.5\n")
    env = {**os.environ, "TMPDIR": str(tmp_path), "FASTERSEG": str(Path(sys.executable).parent / "fasterseg")}
    done = subprocess.run(["bash", "benchmarks/camvid_recipe_chain.sh", "runs", "pack"], capture_output=True, text=True,
                          cwd=work, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    carried = work / "benchmarks" / "results" / "camvid_recipe" / "camvid_arm_quarter_s1.compact.safetensors"
    assert len(compact_files(carried)) == len(compact_files(run / "compact.safetensors")) >= 2
    assert torch.equal(read_compact(carried)[0].model["weight"], read_compact(run / "compact.safetensors")[0].model["weight"])


def test_the_family_chain_trains_a_member_only_once_it_is_searched(tmp_path):
    """The family chain refuses to train a member whose search has not been recorded, naming the
    step that records it, and refuses an unknown step by name; it leaves no copy of itself behind."""
    import os
    import subprocess

    chain = SCRIPT.parent / "camvid_family_chain.sh"
    results = tmp_path / "results"  # not the repository's, where the member may be recorded by now
    env = {**os.environ, "TMPDIR": str(tmp_path), "FASTERSEG": "/bin/false", "RESULTS": str(results)}
    for step, message in (("train_large", f"no {results}/camvid_cpu_family_l/student.json yet; run the large step first"),
                          ("nosuchstep", "unknown step 'nosuchstep' (see the header of benchmarks/camvid_family_chain.sh)")):
        done = subprocess.run(["bash", str(chain), str(tmp_path / "runs"), step], capture_output=True, text=True,
                              cwd=tmp_path, env=env, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    assert not list(tmp_path.glob("camvid_family_chain.*")) and not (tmp_path / "runs").exists()
