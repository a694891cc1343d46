"""These tests run many tiny convolutions: one intra-op thread is several times faster than
two competing ones on a small shared CPU, so the package runs single-threaded."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
