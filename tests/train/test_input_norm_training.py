"""Training with ``input_norm=image`` (the network side: tests/nets/test_input_norm.py)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import toy_train_config


def test_training_sets_it_from_the_config_and_a_resume_cannot_change_it(toy, tmp_path):
    from fasterseg.errors import TrainingError
    from fasterseg.modelfile import load_model
    from fasterseg.train.trainer import train

    result = train(toy_train_config(toy, tmp_path, "image", "input_norm=image", "epochs=1"), show_progress=False)
    model = load_model(result.run_dir / "last.safetensors")
    assert model.genotype.input_norm == "image"
    assert json.loads((result.run_dir / "genotype.json").read_text())["input_norm"] == "image"
    with pytest.raises(TrainingError, match="input_norm=image"):
        train(toy_train_config(toy, tmp_path, "image", "input_norm=dataset", "epochs=2"), resume=True, show_progress=False)
    with pytest.raises(ValueError, match="input_norm"):
        toy_train_config(toy, tmp_path, "n", "genotype=", "network=ddrnet23_slim", "input_norm=image")
