"""From RGB images to label maps: normalisation, batching, optional sliding-window tiling.

Padding to the network's stride happens inside the network, so any image size works; images
(and tiles) smaller than the network's minimum are padded here. Images
of equal size are stacked into batches; ``tile`` runs overlapping windows and averages their
class scores, for images too large to run at once.
"""

from __future__ import annotations

from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from fasterseg.errors import FasterSegError
from fasterseg.infer.heads import Segmenter
from fasterseg.infer.runners import RunnerOptions, build_runner
from fasterseg.infer.views import sliding_window_scores
from fasterseg.data.transforms import normalize
from fasterseg.modelfile import IMAGENET_MEAN, IMAGENET_STD
from fasterseg.layers.rules import MIN_INPUT_SIZE


class Predictor:
    """Segment RGB uint8 images (H, W, 3) with a model, through any deploy path."""

    def __init__(self, model: nn.Module, options: RunnerOptions | None = None, batch_size: int = 1,
                 tile: tuple[int, int] | None = None, tile_overlap: float = 0.25):
        if batch_size < 1:
            raise FasterSegError(f"batch size must be >= 1, got {batch_size}")
        if not 0 <= tile_overlap < 1:
            raise FasterSegError(f"tile overlap must be in [0, 1), got {tile_overlap}")
        self.model = model.eval()
        meta = getattr(model, "meta", None)
        self.mean, self.std = (meta.mean, meta.std) if meta else (IMAGENET_MEAN, IMAGENET_STD)
        self.options = options or RunnerOptions(backend="eager")
        self.runner = build_runner(model, self.options)
        self.device = self.runner.device
        self.batch_size = batch_size
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.num_classes = model.num_classes

    def normalise(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 (H, W, 3) images of one size -> (N, 3, H, W) float, (x / 255 - mean) / std."""
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise FasterSegError(f"expected RGB uint8 images (H, W, 3), got {image.dtype} {image.shape}")
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255)
        return normalize(batch, self.mean, self.std)

    def predict(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Label maps (H, W) of train ids, one per image, in order."""
        return [labels for _, labels in self.predict_stream(enumerate(images))]

    def predict_stream(self, items: Iterable[tuple[object, np.ndarray]]) -> Iterator[tuple[object, np.ndarray]]:
        """(key, image) pairs in, (key, labels) out in the same order; consecutive images of one
        size are batched, so a stream of video frames or a folder of equal-size photos runs in batches."""
        pending: list[tuple[object, np.ndarray]] = []
        for key, image in items:
            if pending and (len(pending) == self.batch_size or pending[0][1].shape != image.shape):
                yield from self._run(pending)
                pending = []
            pending.append((key, image))
        if pending:
            yield from self._run(pending)

    def _run(self, pending: list[tuple[object, np.ndarray]]) -> Iterator[tuple[object, np.ndarray]]:
        x = self.normalise([image for _, image in pending])
        height, width = x.shape[2:]
        # Smaller than the network can halve often enough: pad with the mean colour (0 after
        # normalising), here rather than in the exported graphs, whose padding is the stride's.
        x = torch.nn.functional.pad(x, (0, max(0, MIN_INPUT_SIZE - width), 0, max(0, MIN_INPUT_SIZE - height)))
        labels = self._tiled(x) if self.tile else self.runner.labels(x.to(self.device))
        labels = labels[:, :height, :width].cpu().numpy()
        dtype = np.uint8 if self.num_classes <= 256 else np.uint16
        for (key, _), label in zip(pending, labels):
            yield key, label.astype(dtype)

    @torch.no_grad()
    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        """Average the class scores of overlapping windows, then take the argmax.

        Tiling needs the scores, not labels, so it runs the plain PyTorch model whatever the backend.
        """
        segmenter = Segmenter(self.model.to(self.device), argmax=False)
        scores = sliding_window_scores(segmenter, x.to(self.device), self.tile, self.tile_overlap, self.num_classes,
                                       min_size=MIN_INPUT_SIZE)
        return scores.argmax(1)
