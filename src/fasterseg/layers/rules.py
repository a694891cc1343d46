"""The channel rules of the search space, in one place and without torch: the supernet, the
derived networks, genotypes and the latency tables all count channels with these."""

from __future__ import annotations

from typing import Sequence

# The networks' total down-sampling; inputs are padded to a multiple of it.
OUTPUT_STRIDE_MAX = 32
# The zoomed convs halve the 1/32 maps once more, so a (padded) input needs 2 cells there.
MIN_INPUT_SIZE = 2 * OUTPUT_STRIDE_MAX


def padding_for(height: int, width: int) -> tuple[int, int]:
    """Bottom and right zero padding that makes an input of this size runnable by the supernet
    and the derived networks: a multiple of the stride, and at least ``MIN_INPUT_SIZE`` a side."""
    return (max(MIN_INPUT_SIZE - height, (-height) % OUTPUT_STRIDE_MAX),
            max(MIN_INPUT_SIZE - width, (-width) % OUTPUT_STRIDE_MAX))


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size the networks actually run at for an input of this size (see :func:`padding_for`);
    latency tables are measured at it, so their entries are what runs."""
    pad_h, pad_w = padding_for(height, width)
    return height + pad_h, width + pad_w


def stride_padding(height: int, width: int) -> tuple[int, int]:
    """Bottom and right padding to the next multiple of the stride only: what an exported graph
    adds itself (the minimum size is the caller's, who pads small images before the graph)."""
    return (-height) % OUTPUT_STRIDE_MAX, (-width) % OUTPUT_STRIDE_MAX


def feature_channels(stride: int, base_channels: int, width: float) -> int:
    """Channels of a feature map at output ``stride`` and width multiplier ``width``: a full-width
    feature at stride s has s * F channels (F = ``base_channels``)."""
    return int(round(stride * base_channels * width))


def width_channels(max_channels: int, widths: Sequence[float]) -> list[int]:
    """Channels at each width multiplier of a layer that has ``max_channels`` at full width.

    (The official search rounds to a multiple of 8 instead; for its F = 12 and widths k/12 both
    rules give the same counts, and ours also holds for other F.)
    """
    return [int(round(max_channels * w)) for w in widths]


def reduction_fits(channels: int) -> bool:
    """Whether a skip can reduce to ``channels`` at stride 2: the reduction concatenates two
    1x1 convolutions of half the output channels each, so the count must be even."""
    return channels >= 2 and channels % 2 == 0
