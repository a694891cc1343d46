"""OpenVINO compiles one model per input shape; the runner keeps only the most recent few."""

import numpy as np
import pytest
import torch


def test_compiled_shapes_are_bounded_and_still_answer(model_file):
    pytest.importorskip("openvino", reason="openvino is not installed (pip install -e '.[deploy]')")
    from fasterseg.infer.runners import RunnerOptions, build_runner
    from fasterseg.modelfile import load_model

    model = load_model(str(model_file))
    runner = build_runner(model, RunnerOptions(backend="openvino", precision="fp32", extra={"max_compiled_shapes": 2}))
    sizes = [(64, 64), (64, 96), (96, 64)]
    torch.manual_seed(0)
    inputs = {s: torch.randn(1, 3, *s) for s in sizes}
    first = runner.labels(inputs[sizes[0]])
    for s in sizes[1:]:
        runner.labels(inputs[s])
    assert [key[1][2:] for key in runner.compiled] == sizes[1:]  # the oldest shape was dropped
    again = runner.labels(inputs[sizes[0]])  # compiled anew, same answer
    assert np.array_equal(first.numpy(), again.numpy())
    assert len(runner.compiled) == 2
