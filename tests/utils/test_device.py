import pytest
import torch

from fasterseg.errors import ConfigError
from fasterseg.utils.device import resolve_device


def test_auto_is_cuda_exactly_when_there_is_one():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised on a machine without CUDA")
def test_cuda_without_a_device_is_a_config_error_naming_the_way_out():
    with pytest.raises(ConfigError, match="no CUDA device.*device=cpu"):
        resolve_device("cuda")
