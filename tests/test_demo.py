"""The whole pipeline, end to end, on the demo's smallest setting: every artefact is checked."""

import json

import numpy as np
import onnx
import pytest
from PIL import Image

import fasterseg
from fasterseg.cli import main
from fasterseg.modelfile import load_genotype


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--tiny", "--out", str(out)]) == 0
    return out


def test_search_produced_teacher_and_student_genotypes(demo):
    summary = json.loads((demo / "search" / "summary.json").read_text())
    teacher, student = (load_genotype(summary[n]["genotype"]) for n in ("teacher", "student"))
    assert teacher.head_width == 1.0 and student.head_width == 0.5
    for g in (teacher, student):
        assert g.ends[0] == 2 and g.num_classes == 19


def test_models_metrics_onnx_and_predictions_are_written(demo):
    student = fasterseg.load_model(demo / "student" / "best.safetensors")
    assert student.meta.class_names[0] == "road" and len(student.meta.class_names) == 19
    # The student was distilled: its run recorded the teacher.
    assert "teacher/best.safetensors" in (demo / "student" / "config.yaml").read_text()
    metrics = json.loads((demo / "eval" / "metrics.json").read_text())
    for key in ("IoU Classes", "iIoU Classes", "IoU Categories", "iIoU Categories"):
        assert 0.0 <= metrics["average"][key] <= 1.0
    bench = json.loads((demo / "bench.json").read_text())
    assert {r["backend"] for r in bench["results"]} == {"eager", "optimized", "onnxruntime"}
    onnx.checker.check_model(str(demo / "student.onnx"))
    overlays = sorted((demo / "predictions" / "overlay").rglob("*.png"))
    assert len(overlays) == 4
    assert np.asarray(Image.open(overlays[0])).shape == (64, 128, 3)


def test_report_links_only_existing_files(demo):
    report = (demo / "report.md").read_text()
    for section in ("## Search", "## Training", "## Evaluation", "## Speed", "## Predictions"):
        assert section in report
    assert "evolution_student.png" in report  # the search history figure
    import re

    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (demo / target).is_file(), target


def test_running_again_skips_finished_stages(demo, capsys):
    assert main(["demo", "--tiny", "--out", str(demo)]) == 0
    out = capsys.readouterr().out
    assert out.count("done already") == 9
