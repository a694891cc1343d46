"""Paired (image, label) transforms for training and evaluation, in torch.

Randomness comes from an explicit ``torch.Generator`` per sample (seeded from the run seed, the
epoch and the sample index), so a sample is augmented identically whichever worker or process
loads it: this is what makes resumed and multi-process runs reproduce single-process ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fasterseg.data.base import IGNORE_INDEX

# The normalisation every FasterSeg network is trained with (ImageNet statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_tensors(image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 HWC image -> float CHW in [0, 1]; label -> int64 HW."""
    img = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1).float().div_(255.0)
    lab = torch.from_numpy(np.asarray(label).astype(np.int64))
    return img, lab


def normalize(img: torch.Tensor, mean, std) -> torch.Tensor:
    """``(img - mean) / std`` per channel, for a (3, H, W) image or an (N, 3, H, W) batch in [0, 1]:
    the one normalisation of training, search, evaluation and inference."""
    m = torch.as_tensor(mean, dtype=img.dtype, device=img.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=img.dtype, device=img.device).view(-1, 1, 1)
    return (img - m) / s


def resize_label(lab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A label map resized by nearest neighbour (ids are not averaged)."""
    return F.interpolate(lab[None, None].float(), size=size, mode="nearest")[0, 0].long()


def resize_pair(img: torch.Tensor, lab: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A (3, H, W) image (bilinear) and its label map (nearest) resized together."""
    img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
    return img, resize_label(lab, size)


@dataclass(frozen=True)
class Photometric:
    """Colour and sensor jitter of a training image (values in [0, 1]), all off by default.

    ``brightness``, ``contrast`` and ``saturation`` scale by a factor drawn from
    [1 - x, 1 + x]; ``hue`` rotates the chroma plane by up to ``hue`` of a full turn; with
    probability ``blur_prob`` a Gaussian blur of sigma up to ``blur_sigma`` px; ``noise`` is the
    largest standard deviation of added Gaussian noise. Applied in this fixed order with draws
    from the sample's generator, so a sample looks the same on every worker and after resume.
    """

    brightness: float = 0.0  # scale brightness by a factor in [1 - x, 1 + x]; 0: off
    contrast: float = 0.0  # scale contrast about the mean grey by a factor in [1 - x, 1 + x]; 0: off
    saturation: float = 0.0  # scale saturation by a factor in [1 - x, 1 + x]; 0: off
    hue: float = 0.0  # rotate hue by up to this fraction of a turn (at most 0.5); 0: off
    blur_prob: float = 0.0  # probability of a Gaussian blur; 0: off
    blur_sigma: float = 1.5  # largest blur sigma in pixels
    noise: float = 0.0  # largest standard deviation of added Gaussian noise (image in [0, 1]); 0: off

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "saturation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"photometric.{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.hue <= 0.5:
            raise ValueError(f"photometric.hue must be in [0, 0.5], got {self.hue}")
        if not 0.0 <= self.blur_prob <= 1.0 or self.blur_sigma <= 0 or self.noise < 0:
            raise ValueError("photometric.blur_prob must be in [0, 1], blur_sigma > 0 and noise >= 0")

    @property
    def enabled(self) -> bool:
        return any((self.brightness, self.contrast, self.saturation, self.hue, self.blur_prob, self.noise))

    def __call__(self, img: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        u = torch.rand(7, generator=generator).tolist()  # one fixed-size draw: later settings never shift earlier ones
        gray_weights = torch.tensor([0.299, 0.587, 0.114], dtype=img.dtype).view(3, 1, 1)
        if self.brightness:
            img = img * (1 + self.brightness * (2 * u[0] - 1))
        if self.contrast:
            mean = (img * gray_weights).sum(0).mean()
            img = mean + (img - mean) * (1 + self.contrast * (2 * u[1] - 1))
        if self.saturation:
            gray = (img * gray_weights).sum(0, keepdim=True)
            img = gray + (img - gray) * (1 + self.saturation * (2 * u[2] - 1))
        if self.hue:
            img = rotate_hue(img, self.hue * (2 * u[3] - 1) * 2 * math.pi)
        if self.blur_prob and u[4] < self.blur_prob:
            img = gaussian_blur(img, sigma=max(0.1, self.blur_sigma * u[5]))
        if self.noise:
            img = img + torch.randn(img.shape, generator=generator, dtype=img.dtype) * (self.noise * u[6])
        return img.clamp_(0.0, 1.0)


def rotate_hue(img: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate the chroma of an RGB image (3, H, W) by ``angle`` radians about the grey axis (YIQ)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=img.dtype)
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=img.dtype)
    matrix = torch.linalg.inv(to_yiq) @ rot @ to_yiq
    return torch.einsum("ij,jhw->ihw", matrix, img)


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) with reflected borders."""
    radius = max(1, int(math.ceil(2 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=img.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = img.shape[0]
    out = F.pad(img[None], (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out[0]


@dataclass
class TrainTransform:
    """Random scale, pad (image 0 after normalisation, label ignore) and crop, flip, optional
    photometric jitter of the crop, normalise."""

    crop_size: tuple[int, int]
    scales: tuple[float, ...] = (0.75, 1.0, 1.25)
    flip: bool = True
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    base_scale: float = 1.0  # e.g. 0.5 to train on 2x-downsampled images
    ignore_index: int = IGNORE_INDEX
    photometric: Photometric = Photometric()

    def __call__(self, image: np.ndarray, label: np.ndarray, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = to_tensors(image, label)
        scale = self.base_scale * self.scales[int(torch.randint(len(self.scales), (1,), generator=generator))]
        if scale != 1.0:
            h, w = img.shape[1:]
            img, lab = resize_pair(img, lab, (max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))))
        ch, cw = self.crop_size
        h, w = img.shape[1:]
        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        if pad_h or pad_w:  # with the mean colour, which normalises to exactly 0
            padded = torch.empty((3, h + pad_h, w + pad_w), dtype=img.dtype)
            padded.copy_(torch.as_tensor(self.mean, dtype=img.dtype).view(3, 1, 1).expand_as(padded))
            padded[:, :h, :w] = img
            img = padded
            lab = F.pad(lab, (0, pad_w, 0, pad_h), value=self.ignore_index)
            h, w = img.shape[1:]
        top = int(torch.randint(h - ch + 1, (1,), generator=generator))
        left = int(torch.randint(w - cw + 1, (1,), generator=generator))
        img = img[:, top: top + ch, left: left + cw]
        lab = lab[top: top + ch, left: left + cw]
        if self.flip and bool(torch.rand((1,), generator=generator) < 0.5):
            img, lab = img.flip(-1), lab.flip(-1)
        if self.photometric.enabled:
            img = self.photometric(img, generator)
        img = normalize(img, self.mean, self.std)
        return img.contiguous(), lab.contiguous()


@dataclass
class EvalTransform:
    """Normalise only: no crop, flip or random rescale.

    ``downsample`` first shrinks image and label (nearest) by an integer factor, as the search
    scores its outputs at its reduced working size; ``scale`` then rescales the image alone, the
    label staying at full size (training's validation at another input size).
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale: float = 1.0
    downsample: int = 1

    def __call__(self, image: np.ndarray, label: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        img, lab = to_tensors(image, label)
        if self.downsample > 1:
            h, w = img.shape[1:]
            img, lab = resize_pair(img, lab, (h // self.downsample, w // self.downsample))
        if self.scale != 1.0:
            h, w = img.shape[1:]
            img = F.interpolate(img[None], size=(int(h * self.scale + 0.5), int(w * self.scale + 0.5)),
                                mode="bilinear", align_corners=False)[0]
        return normalize(img, self.mean, self.std), lab
