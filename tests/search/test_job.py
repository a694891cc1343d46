"""`fasterseg search` end to end on a tiny space: table -> pretrain -> co-search -> genotypes -> train."""

import json
from pathlib import Path

import pytest
import torch

from fasterseg.cli import main
from fasterseg.config import load_config
from fasterseg.modelfile import load_genotype
from fasterseg.latency.lut import LatencyTable
from fasterseg.latency.model import network_latency
from fasterseg.search.config import SearchJobConfig
from fasterseg.search.job import LatencyModel
from fasterseg.space.supernet import Supernet

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "search" / "tiny.yaml"
SPACE = REPO / "configs" / "search" / "tiny.yaml"  # a search config is also a lut build --space


@pytest.fixture(scope="module")
def tiny_lut(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lut") / "tiny.json"
    assert main(["lut", "build", "--device", "cpu", "--backend", "eager", "--size", "64x128", "--space", str(SPACE),
                 "--repeats", "3", "--warmup", "1", "--out", str(out), "--no-progress"]) == 0
    return out


def _job(lut: Path, data: str, out: Path, *extra: str) -> SearchJobConfig:
    return load_config(SearchJobConfig, TINY, [
        f"data={data}", f"lut={lut}", f"out_dir={out}", "latency_size=[64, 128]",
        "pretrain.epochs=1", "pretrain.iters_per_epoch=2", "search.epochs=1", "search.iters_per_epoch=2",
        "search.val_limit=2", "pretrain.val_limit=2", *extra])


def test_latency_model_gives_the_search_a_differentiable_latency(tiny_lut):
    job = load_config(SearchJobConfig, TINY, [f"lut={tiny_lut}", "latency_size=[64, 128]"])
    model = LatencyModel(LatencyTable.load(tiny_lut), job.supernet, (64, 128), "coupled")
    net = Supernet(job.supernet)
    with torch.no_grad():  # make the teacher's choices one-hot: its path and ops become certain
        for p in net.arch["teacher"].parameters():
            p.zero_()
        params = net.arch["teacher"]
        params.alpha_0[:, 3] = 50.0
        params.alpha_1[:, 3] = 50.0
        params.alpha_2[:, 3] = 50.0
        params.beta_1[:, 1] = 50.0  # keep at 1/16 ...
        params.beta_2[:, 1] = 50.0
        params.beta_1[0, 0] = 50.0  # ... after going down at the first chance
        params.beta_2[0, 0] = 50.0
    ms = model.supernet_ms(net, "teacher")
    ms.backward()
    assert net.arch["teacher"].alpha_0.grad is not None and net.arch["teacher"].beta_1.grad is not None
    # Near one-hot at full width, it is a real table figure: more than the teacher's first stem
    # conv alone, less than every entry of the table summed.
    table = LatencyTable.load(tiny_lut)
    first_conv = max(v for k, v in table.entries.items() if k.startswith("stem_conv"))
    assert first_conv < ms.item() < sum(table.entries.values())


def test_search_writes_genotypes_that_train_and_report_their_fps(tiny_lut, synth_root, tmp_path, capsys):
    rc = main(["search", "--config", str(TINY), "--data", f"synth:{synth_root}", "--lut", str(tiny_lut),
               "--out-dir", str(tmp_path), "--name", "s",
               "--set", "latency_size=[64, 128]", "--set", "pretrain.epochs=1", "--set", "pretrain.iters_per_epoch=2",
               "--set", "search.epochs=1", "--set", "search.iters_per_epoch=2", "--set", "search.val_limit=2",
               "--set", "pretrain.val_limit=2", "--set", "pretrain.batch_size=2", "--set", "search.batch_size=2"])
    assert rc == 0
    run = tmp_path / "s"
    summary = json.loads((run / "summary.json").read_text())
    env = json.loads((run / "environment.json").read_text())  # the run keeps where it ran
    assert env["torch"] == torch.__version__ and env["fasterseg"]
    assert set(summary) == {"teacher", "student"}
    assert len(list((tmp_path / ".cache" / "data").glob("*.u8"))) == 1  # the train split, decoded once for both phases
    table = LatencyTable.load(tiny_lut)
    for name, info in summary.items():
        genotype = load_genotype(info["genotype"])
        assert genotype.ends[0] == 2 and genotype.ends[1] in (0, 1)
        assert abs(network_latency(genotype, table, (64, 128)).total_ms - info["latency_ms"]) < 1e-9
        assert (run / "search" / f"{name}.png").is_file()
    # The student searched widths within the tiny space's choices; the teacher stayed at full width.
    teacher = load_genotype(summary["teacher"]["genotype"])
    assert all(w == 1.0 for b in teacher.branches for w in b.widths)
    assert "skip" not in {op for b in teacher.branches for op in b.ops}
    # A second search into the same run is refused.
    from fasterseg.errors import ConfigError
    from fasterseg.search.job import run_search

    with pytest.raises(ConfigError, match="--resume"):
        run_search(load_config(SearchJobConfig, run / "config.yaml"))


def test_shipped_search_configs_load():
    configs = sorted((REPO / "configs" / "search").glob("*.yaml"))
    assert {"cityscapes.yaml", "camvid.yaml", "tiny.yaml", "camvid_cpu_family_wide.yaml",
            "camvid_cpu_family_small.yaml"} <= {c.name for c in configs}
    for config in configs:
        job = load_config(SearchJobConfig, config)
        assert job.supernet.layers >= 6, config


def test_a_table_that_misses_the_space_fails_before_anything_is_written(tiny_lut, synth_root, tmp_path):
    from fasterseg.errors import ConfigError
    from fasterseg.search.job import run_search

    job = load_config(SearchJobConfig, TINY, [f"data=synth:{synth_root}", f"lut={tiny_lut}", f"out_dir={tmp_path}",
                                              "name=bad", "latency_size=[128, 256]"])  # the table is for 64x128
    with pytest.raises(ConfigError, match="num_classes"):
        run_search(job)
    assert not (tmp_path / "bad").exists()


def test_an_all_zero_table_is_refused_before_anything_is_written(tiny_lut, synth_root, tmp_path):
    import json

    from fasterseg.errors import ConfigError
    from fasterseg.search.job import run_search

    table = json.loads(tiny_lut.read_text())
    table["entries"] = {k: 0.0 for k in table["entries"]}
    zero = tmp_path / "zero.json"
    zero.write_text(json.dumps(table))
    with pytest.raises(ConfigError, match="every entry of the latency table is 0 ms"):
        run_search(_job(zero, f"synth:{synth_root}", tmp_path, "name=zero"))
    assert not (tmp_path / "zero").exists()


def test_a_resumed_search_may_lengthen_pretraining_until_the_search_phase_begins(tiny_lut, synth_root, tmp_path):
    import shutil

    from fasterseg.errors import ConfigError
    from fasterseg.search.job import run_search

    def job(*extra):
        return _job(tiny_lut, f"synth:{synth_root}", tmp_path, "name=s", "pretrain.batch_size=2", "search.batch_size=2",
                    *extra)

    run_search(job())
    run = tmp_path / "s"
    with pytest.raises(ConfigError, match="can no longer be lengthened"):
        run_search(job("pretrain.epochs=2"), resume=True)
    with pytest.raises(ConfigError, match=r"other settings for \['pretrain.lr'\]"):
        run_search(job("pretrain.lr=0.5"), resume=True)
    assert "epochs: 1" in (run / "config.yaml").read_text()  # refused before anything was written
    shutil.rmtree(run / "search")  # as if stopped between the phases
    run_search(job("pretrain.epochs=2", "search.lr=0.005"), resume=True)  # the search phase has not begun
    rows = (run / "pretrain" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]  # pretraining continued, then the search ran
    assert (run / "pretrain" / "done").exists() and (run / "summary.json").is_file()
    assert "epochs: 2" in (run / "pretrain" / "config.yaml").read_text()
    assert "lr: 0.005" in (run / "search" / "config.yaml").read_text()


def test_searches_at_other_windows_share_one_finished_pretraining(tiny_lut, synth_root, tmp_path):
    """A family member starts its search phase from another run's pretraining: it computes what
    that run's own search phase computed, pays no pretraining, and refuses a pretraining that is
    unfinished or not the one it would have computed."""
    from fasterseg.errors import ConfigError
    from fasterseg.search.job import run_search

    def job(*extra):
        return _job(tiny_lut, f"synth:{synth_root}", tmp_path, "pretrain.batch_size=2", "search.batch_size=2", *extra)

    run_search(job("name=first"))
    first = tmp_path / "first"
    run_search(job("name=same", f"pretrained_from={first}"))
    same = tmp_path / "same"
    assert not (same / "pretrain").exists()
    assert (same / "search" / "log.csv").read_text() == (first / "search" / "log.csv").read_text()
    assert (same / "student.json").read_text() == (first / "student.json").read_text()
    assert f"pretrained_from: {first}" in (same / "config.yaml").read_text()

    # Another window (and scoring settings of pretraining) is what sharing is for
    run_search(job("name=wider", f"pretrained_from={first}", "search.fps_min={student: 1.0}",
                   "search.fps_max={student: 2.0}", "pretrain.val_limit=1"))
    assert (tmp_path / "wider" / "summary.json").is_file()

    with pytest.raises(ConfigError, match=r"other settings for \['pretrain.lr'\]"):
        run_search(job("name=other_lr", f"pretrained_from={first}", "pretrain.lr=0.5"))
    with pytest.raises(ConfigError, match="did not pretrain itself"):
        run_search(job("name=chained", f"pretrained_from={same}"))
    (first / "pretrain" / "done").unlink()
    with pytest.raises(ConfigError, match="has not finished its pretraining"):
        run_search(job("name=unfinished", f"pretrained_from={first}"))
    assert not any((tmp_path / n).exists() for n in ("other_lr", "chained", "unfinished"))


def test_latency_split_weighs_the_three_decoupled_terms_and_routes_their_gradients(tiny_lut):
    """latency_split [a, b, g] is the paper's decoupled term with weights a, b, g (normalised to sum 1):
    its value is the hand-weighted sum of the three single-group terms, and a group with weight 0 gets no
    latency gradient; [] is the paper's 1/500, 497/500, 2/500."""
    from fasterseg.latency.model import DECOUPLED_WEIGHTS, fixed_ratios, supernet_latency

    job = load_config(SearchJobConfig, TINY, [f"lut={tiny_lut}", "latency_size=[64, 128]"])
    table = LatencyTable.load(tiny_lut)
    net = Supernet(job.supernet)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in net.arch["student"].parameters():
            p.normal_()
    params = net.arch["student"]
    lut = LatencyModel(table, job.supernet, (64, 128)).luts["student"]
    flat_a = [torch.zeros_like(a) for a in params.alphas]
    flat_b = [None if b is None else torch.zeros_like(b) for b in params.betas]
    widest = fixed_ratios(job.supernet)
    with torch.no_grad():
        torch.manual_seed(1)
        ratios = net.width_one_hots("student")
        terms = (supernet_latency(lut, params.alphas, flat_b, widest), supernet_latency(lut, flat_a, params.betas, widest),
                 supernet_latency(lut, flat_a, flat_b, ratios))
    for split, weights in (([], DECOUPLED_WEIGHTS), ([1.0, 0.5, 1.0], (0.4, 0.2, 0.4))):
        model = LatencyModel(table, job.supernet, (64, 128), "decoupled", split)
        torch.manual_seed(1)  # the same width sample as above
        ms = model.supernet_ms(net, "student")
        assert ms.item() == pytest.approx(sum(w * t.item() for w, t in zip(weights, terms)), rel=1e-6)
    for split, silent in (([0.0, 1.0, 0.0], "alpha_0"), ([1.0, 0.0, 0.0], "beta_1")):
        net.zero_grad(set_to_none=True)
        LatencyModel(table, job.supernet, (64, 128), "decoupled", split).supernet_ms(net, "student").backward()
        grads = {n: p.grad for n, p in params.named_parameters()}
        assert grads[silent] is None or not grads[silent].any()
        loud = "beta_1" if silent == "alpha_0" else "alpha_0"
        assert grads[loud] is not None and grads[loud].abs().sum() > 0


@pytest.mark.parametrize("split, message", [
    ("[1, 0.5]", "three weights"), ("[1, -1, 1]", "three weights"), ("[0, 0, 0]", "positive sum")])
def test_a_bad_latency_split_is_refused_naming_the_key(split, message):
    from fasterseg.errors import ConfigError

    with pytest.raises(ConfigError, match=f"latency_split.*{message}"):
        load_config(SearchJobConfig, TINY, [f"latency_split={split}"])
    with pytest.raises(ConfigError, match="latency_split.*coupled"):
        load_config(SearchJobConfig, TINY, ["latency_split=[1, 1, 1]", "latency_terms=coupled"])


def test_a_split_with_weight_only_on_widths_is_refused_for_an_architecture_without_width_search():
    from fasterseg.errors import ConfigError
    from fasterseg.search.job import split_weights

    assert split_weights([0, 0, 2], widths_searched=True) == (0.0, 0.0, 1.0)
    assert split_weights([1, 3, 4], widths_searched=False) == (0.25, 0.75)
    with pytest.raises(ConfigError, match=r"latency_split: \[0, 0, 2\].*no widths"):
        split_weights([0, 0, 2], widths_searched=False)
