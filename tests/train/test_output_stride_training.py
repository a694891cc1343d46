"""Training with ``output_stride=4`` (the network side: tests/nets/test_output_stride.py)."""

from __future__ import annotations

import pytest

from tests.helpers import toy_train_config


def test_training_sets_it_from_the_config_and_a_resume_cannot_change_it(toy, tmp_path):
    from fasterseg.errors import TrainingError
    from fasterseg.modelfile import load_model
    from fasterseg.train.trainer import train

    result = train(toy_train_config(toy, tmp_path, "quarter", "output_stride=4", "epochs=1"), show_progress=False)
    model = load_model(result.run_dir / "last.safetensors")
    assert model.genotype.output_stride == 4 and model.refine4.classify.weight.abs().sum() > 0  # it trained
    with pytest.raises(TrainingError, match="output_stride=4"):
        train(toy_train_config(toy, tmp_path, "quarter", "output_stride=8", "epochs=2"), resume=True, show_progress=False)
    with pytest.raises(ValueError, match="output_stride"):
        toy_train_config(toy, tmp_path, "n", "genotype=", "network=ddrnet23_slim", "output_stride=4")
