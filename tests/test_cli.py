"""The fasterseg command end to end, through its real entry point."""

import json

import pytest
import torch

import fasterseg
from fasterseg.cli import main
from fasterseg.nets.official import load_official_arch, official_genotype


def test_import_official_then_info(official_dir, equivalence_dir, tmp_path, capsys):
    out = tmp_path / "student.safetensors"
    rc = main(["import-official", "--arch", str(official_dir / "arch_1.pt"),
               "--weights", str(equivalence_dir / "student_seed0_weights1.pt"), "--student", "--out", str(out)])
    assert rc == 0
    assert "channel_attention" in capsys.readouterr().out  # the note about dropped tensors
    model = fasterseg.load_model(out)
    io = torch.load(equivalence_dir / "student_seed0_io1.pt", weights_only=True)
    with torch.no_grad():
        assert (model(io["input"]) - io["logits"]).abs().max().item() <= 1e-4

    plot = tmp_path / "arch.png"
    assert main(["info", str(out), "--json", "--plot", str(plot)]) == 0
    text = capsys.readouterr().out
    report = json.loads(text[: text.rindex("}") + 1])
    assert report["params"] == 3_421_875
    assert report["macs"] == 27_770_486_784  # the model's training size, 1024x2048
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_info_on_a_genotype_json(official_dir, tmp_path, capsys):
    g = official_genotype(load_official_arch(official_dir / "arch_0.pt"), "teacher")
    path = tmp_path / "teacher.json"
    g.save(path)
    assert main(["info", str(path), "--size", "512x1024"]) == 0
    out = capsys.readouterr().out
    assert "22,115,203" in out and "conv_2x_downup" in out


@pytest.mark.parametrize("argv", [[], ["info"], ["info", "x.json", "--size", "big"], ["no-such-command"],
                                  ["import-official", "--arch", "a.pt"]])
def test_bad_usage_exits_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_bad_input_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert main(["info", str(bad)]) == 1
    assert "bad.json" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["info", "import-official"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert "usage" in capsys.readouterr().out


NO_TORCH = """
import sys
from fasterseg.cli import main
for argv in (["--help"], ["train", "--help"], ["predict", "--bogus"], ["bench"]):
    try:
        main(argv)
    except SystemExit:
        pass
print("torch" in sys.modules)
"""


def test_help_and_usage_errors_answer_without_importing_torch():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout[-500:] + out.stderr[-500:]
    assert "usage" in out.stdout + out.stderr


@pytest.mark.parametrize("command, flag, kind", [("train", "--genotype", "training"), ("search", "--lut", "search")])
def test_resume_refuses_flags_that_would_change_the_run(command, flag, kind, tmp_path, capsys):
    """train and search read --resume the same way: their own config.yaml, --set on top, and a
    clear refusal (before anything runs) of a flag that would change what the run is."""
    run = tmp_path / "run"
    assert main([command, "--resume", str(run)]) == 1
    assert f"{run}: not a {kind} run (no config.yaml)" in capsys.readouterr().err
    run.mkdir()
    (run / "config.yaml").write_text("{}\n")
    assert main([command, "--resume", str(run), flag, "x.json"]) == 1
    err = capsys.readouterr().err
    assert f"--resume continues a {kind} run with its own config; {flag} cannot change it" in err
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]  # nothing was written
