"""Paired (image, label) transforms for training and evaluation, in torch.

Randomness comes from an explicit ``torch.Generator`` per sample (seeded from the run seed, the
epoch and the sample index), so a sample is augmented identically whichever worker or process
loads it: this is what makes resumed and multi-process runs reproduce single-process ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

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


def normalize(img: torch.Tensor, mean, std, inplace: bool = False) -> torch.Tensor:
    """``(img - mean) / std`` per channel, for a (3, H, W) image or an (N, 3, H, W) batch in [0, 1]:
    the one normalisation of training, search, evaluation and inference. ``inplace`` writes into
    ``img`` (a tensor the caller owns: training's crops, a pass fewer per image)."""
    m = torch.as_tensor(mean, dtype=img.dtype, device=img.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=img.dtype, device=img.device).view(-1, 1, 1)
    return img.sub_(m).div_(s) if inplace else (img - m) / s


def resize_label(lab: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A label map resized by nearest neighbour (ids are not averaged)."""
    return F.interpolate(lab[None, None].float(), size=size, mode="nearest")[0, 0].long()


def resize_pair(img: torch.Tensor, lab: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A (3, H, W) image (bilinear) and its label map (nearest) resized together."""
    img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
    return img, resize_label(lab, size)


def _bilinear_taps(start: int, count: int, in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source rows (or columns) and weights of output positions ``start .. start + count`` of a
    bilinear resize from ``in_size`` to ``out_size`` (half-pixel centres, as ``F.interpolate``
    with ``align_corners=False``, in float32 as its CPU kernel computes them)."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    src = ((torch.arange(start, start + count, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_min_(0.0)
    lo = src.long()
    return lo, (lo + 1).clamp_max_(in_size - 1), src - lo


def _nearest_taps(start: int, count: int, in_size: int, out_size: int) -> torch.Tensor:
    """Source rows (or columns) of output positions ``start .. start + count`` of a nearest resize
    (``F.interpolate``'s legacy ``nearest``: floor of position times in/out, in float32)."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    return (torch.arange(start, start + count, dtype=torch.float32) * scale).floor_().long().clamp_max_(in_size - 1)


def resized_window(img: torch.Tensor, lab: torch.Tensor, size: tuple[int, int], top: int, left: int,
                   window: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``resize_pair(img, lab, size)`` cropped to ``window`` at (``top``, ``left``), computing only
    the window: a random crop of an upscaled image touches a quarter of it at scale 2, and the
    full resize was the largest part of a training image's augmentation. Labels equal the full
    resize's exactly; the image to float rounding (separable: columns, then rows)."""
    (h, w), (oh, ow), (wh, ww) = img.shape[1:], size, window
    if not (0 <= top and top + wh <= oh and 0 <= left and left + ww <= ow):
        raise ValueError(f"window {window} at ({top}, {left}) is outside the resized size {size}")
    y0, y1, wy = _bilinear_taps(top, wh, h, oh)
    x0, x1, wx = _bilinear_taps(left, ww, w, ow)
    r0, r1, c0, c1 = int(y0[0]), int(y1[-1]) + 1, int(x0[0]), int(x1[-1]) + 1  # the source block the window reads
    # Columns first on the transposed block, so that both passes copy whole rows (a gather along
    # the last dimension is several times slower)
    block = img[:, r0:r1, c0:c1].transpose(1, 2).contiguous()
    cols = torch.lerp(block.index_select(1, x0 - c0), block.index_select(1, x1 - c0), wx.view(1, -1, 1))
    cols = cols.transpose(1, 2).contiguous()
    out = torch.lerp(cols.index_select(1, y0 - r0), cols.index_select(1, y1 - r0), wy.view(1, -1, 1))
    ly, lx = _nearest_taps(top, wh, h, oh), _nearest_taps(left, ww, w, ow)
    return out, lab.index_select(0, ly).index_select(1, lx)


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
        img = self._colour(img, u)
        if self.blur_prob and u[4] < self.blur_prob:
            img = gaussian_blur(img, sigma=max(0.1, self.blur_sigma * u[5]))
        if self.noise:
            img = img + torch.randn(img.shape, generator=generator, dtype=img.dtype).mul_(self.noise * u[6])
        return img.clamp_(0.0, 1.0)

    def _colour(self, img: torch.Tensor, u: list[float]) -> torch.Tensor:
        """Brightness, contrast, saturation and hue in that order, applied as the one affine colour
        map they compose to (``A @ pixel + t``): each is affine in the pixel's colour, and contrast's
        grey mean is the same affine map of the image's mean colour. One pass over the pixels
        instead of a dozen, the largest part of a CPU training step's augmentation before."""
        if not (self.brightness or self.contrast or self.saturation or self.hue):
            return img
        luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)
        a, t = torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
        if self.brightness:
            b = 1 + self.brightness * (2 * u[0] - 1)
            a, t = a * b, t * b
        if self.contrast:
            c = 1 + self.contrast * (2 * u[1] - 1)
            mean_colour = img.reshape(3, -1).sum(1).double() / (img.numel() // 3)
            grey_mean = luma @ (a @ mean_colour + t)  # the grey mean of the image as it stands here
            a, t = a * c, t * c + (1 - c) * grey_mean
        if self.saturation:
            s = 1 + self.saturation * (2 * u[2] - 1)
            towards_grey = s * torch.eye(3, dtype=torch.float64) + (1 - s) * torch.ones(3, 1, dtype=torch.float64) * luma
            a, t = towards_grey @ a, towards_grey @ t
        if self.hue:
            turn = hue_matrix(self.hue * (2 * u[3] - 1) * 2 * math.pi)
            a, t = turn @ a, turn @ t
        out = torch.addmm(t.to(img.dtype).view(3, 1), a.to(img.dtype), img.reshape(3, -1))
        return out.view(img.shape)


def hue_matrix(angle: float) -> torch.Tensor:
    """The 3x3 colour matrix (float64) that rotates chroma by ``angle`` radians about the grey axis (YIQ)."""
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=torch.float64)
    c, s = math.cos(angle), math.sin(angle)
    rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]], dtype=torch.float64)
    return torch.linalg.inv(to_yiq) @ rot @ to_yiq


def rotate_hue(img: torch.Tensor, angle: float) -> torch.Tensor:
    """Rotate the chroma of an RGB image (3, H, W) by ``angle`` radians about the grey axis (YIQ)."""
    return (hue_matrix(angle).to(img.dtype) @ img.reshape(3, -1)).view(img.shape)


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) with reflected borders, as weighted sums of shifted
    views (a few taps: 8x faster than a grouped convolution on a CPU)."""
    radius = max(1, int(math.ceil(2 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).tolist()
    h, w = img.shape[1:]
    out = F.pad(img[None], (radius, radius, radius, radius), mode="reflect")[0]
    rows = out[:, :, 0:w] * kernel[0]
    for k in range(1, 2 * radius + 1):
        rows.add_(out[:, :, k: k + w], alpha=kernel[k])
    blurred = rows[:, 0:h] * kernel[0]
    for k in range(1, 2 * radius + 1):
        blurred.add_(rows[:, k: k + h], alpha=kernel[k])
    return blurred


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
        ch, cw = self.crop_size
        h, w = img.shape[1:]
        size = (max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5)))
        if scale != 1.0 and size[0] >= ch and size[1] >= cw:  # no padding: resize the crop's window alone
            top = int(torch.randint(size[0] - ch + 1, (1,), generator=generator))
            left = int(torch.randint(size[1] - cw + 1, (1,), generator=generator))
            img, lab = resized_window(img, lab, size, top, left, (ch, cw))
            return self._finish(img, lab, generator)
        if scale != 1.0:
            img, lab = resize_pair(img, lab, size)
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
        return self._finish(img, lab, generator)

    def resized(self, factor: float) -> "TrainTransform":
        """This transform on images and crops resized by ``factor`` (progressive resizing: the
        same scenes at a lower resolution, for the early epochs)."""
        if factor == 1.0:
            return self
        crop = (max(1, int(self.crop_size[0] * factor + 0.5)), max(1, int(self.crop_size[1] * factor + 0.5)))
        return replace(self, crop_size=crop, base_scale=self.base_scale * factor)

    def _finish(self, img: torch.Tensor, lab: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Flip, photometric jitter and normalisation of a crop (the draws after the crop's)."""
        if self.flip and bool(torch.rand((1,), generator=generator) < 0.5):
            img, lab = img.flip(-1), lab.flip(-1)
        if self.photometric.enabled:
            img = self.photometric(img, generator)
        img = normalize(img.contiguous(), self.mean, self.std, inplace=True)  # this call's own tensor (a crop is a view)
        return img, lab.contiguous()


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
