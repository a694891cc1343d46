import torch

from fasterseg.infer.views import InferenceOptions, predict_probabilities, sliding_window_scores
from fasterseg.nets.network import FasterSegNet, init_weights

from tests.helpers import tiny_genotype


class _PixelModel(torch.nn.Module):
    """Per-pixel (1x1) model: windowing cannot change its output, so windows must stitch exactly."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)
        self.num_classes = 4  # the contract every network keeps (nets/registry.py)

    def forward(self, x):
        return self.conv(x)


def test_sliding_window_of_a_pointwise_model_equals_whole_image():
    torch.manual_seed(0)
    model = _PixelModel()
    x = torch.randn(2, 3, 50, 70)
    whole = model(x)
    windowed = sliding_window_scores(model, x, (32, 32), 1 / 3, 4)
    torch.testing.assert_close(windowed, whole)


def test_flip_averaging_of_a_flip_symmetric_input_equals_plain():
    torch.manual_seed(0)
    model = _PixelModel()
    x = torch.randn(1, 3, 16, 20)
    x = x + x.flip(-1)
    plain = predict_probabilities(model, x, InferenceOptions())
    flipped = predict_probabilities(model, x, InferenceOptions(flip=True))
    torch.testing.assert_close(plain, flipped)


def test_multi_scale_output_is_a_distribution_at_input_size():
    torch.manual_seed(0)
    net = FasterSegNet(tiny_genotype()).eval()
    init_weights(net)
    x = torch.randn(1, 3, 64, 96)
    prob = predict_probabilities(net, x, InferenceOptions(scales=(0.75, 1.0, 1.25), flip=True, window=(64, 64)))
    assert prob.shape == (1, 11, 64, 96)
    torch.testing.assert_close(prob.sum(1), torch.ones(1, 64, 96))
