"""The contract every operator of the search space keeps, run on each one in ``layers.ops``
(and so on any operator added there): forward at both strides and odd sizes, a gradient for every
parameter, an ONNX graph ONNX Runtime reproduces, BatchNorm folding, its latency-table piece (the
table key round trip and the module the table times computing what the network's op computes),
and the round trip through the official table's names."""

from __future__ import annotations

import pytest
import torch

from fasterseg.layers.ops import PRIMITIVES, build_op
from fasterseg.latency.lut import OpSpec, parse_key, spec_key

CASES = [(name, stride) for name in PRIMITIVES for stride in (1, 2)]


def _c_in(stride: int) -> int:
    """Input channels: as many as the output at stride 1 (a skip there is the identity), fewer at 2."""
    return 12 if stride == 1 else 8


def _op(name: str, stride: int, c_out: int = 12) -> torch.nn.Module:
    from fasterseg.nets.network import init_weights

    c_in = _c_in(stride)
    torch.manual_seed(0)
    op = build_op(name, c_in, c_out, stride)
    init_weights(op)
    with torch.no_grad():  # BatchNorm statistics away from (0, 1), so that folding is tested
        op.train()
        for _ in range(2):
            op(torch.randn(2, c_in, 16, 24))
    return op.eval()


@pytest.mark.parametrize("name,stride", CASES)
def test_forward_and_backward_at_odd_sizes(name, stride):
    op = _op(name, stride).train()
    x = torch.randn(2, _c_in(stride), 18, 26, requires_grad=True)
    y = op(x)
    assert y.shape == (2, 12, 18 // stride, 26 // stride)
    y.square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in op.parameters())


@pytest.mark.parametrize("name,stride", CASES)
def test_exports_to_onnx_and_folds(name, stride, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from fasterseg.infer.fold import fold_batchnorm

    op = _op(name, stride)
    x = torch.randn(1, _c_in(stride), 16, 24)
    with torch.no_grad():
        want = op(x)
        folded = fold_batchnorm(op)  # strict: every BatchNorm of an operator follows its convolution
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
        assert torch.allclose(folded(x), want, atol=1e-4, rtol=1e-4)
    path = tmp_path / "op.onnx"
    torch.onnx.export(op, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=18, dynamo=True)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert abs(got - want.numpy()).max() < 1e-4


@pytest.mark.parametrize("name,stride", CASES)
def test_its_latency_table_piece_is_the_op_the_network_runs(name, stride):
    """The table key round-trips, and the module the table times (``latency.measure.build_module``)
    has the op's parameter shapes and output shape."""
    from fasterseg.latency.measure import build_module

    spec = OpSpec(name, 16, 24, _c_in(stride), 12, stride)
    assert parse_key(spec_key(spec)) == spec
    timed = build_module(spec)
    op = _op(name, stride)
    assert [tuple(p.shape) for p in timed.parameters()] == [tuple(p.shape) for p in op.parameters()]
    with torch.no_grad():
        x = torch.randn(1, _c_in(stride), 16, 24)
        assert timed(x).shape == op(x).shape


@pytest.mark.parametrize("name,stride", CASES)
def test_the_official_table_name_round_trips(name, stride):
    from fasterseg.latency.official import official_name, official_to_spec

    spec = OpSpec(name, 32, 64, 16, 16 * stride, stride)
    assert official_to_spec(official_name(spec)) == spec
