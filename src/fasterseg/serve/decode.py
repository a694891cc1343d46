"""A request body -> an RGB image, refusing what would crash or cost unbounded memory.

PNG and JPEG only, checked by their first bytes rather than trusted from the content type; the
pixel count is read from the header and checked *before* the pixels are decoded, so a
decompression bomb (a small file of a huge image) costs nothing; a truncated file is an error,
not a half-grey picture (Pillow would otherwise fill it in when told to).
"""

from __future__ import annotations

import io
import warnings

import numpy as np

SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "application/octet-stream")


class BadRequest(Exception):
    """A request the server refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def image_format(data: bytes) -> str | None:
    return next((name for sig, name in SIGNATURES.items() if data.startswith(sig)), None)


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a PNG or JPEG body, or :class:`BadRequest`."""
    from PIL import Image

    if not data:
        raise BadRequest(400, "empty body: send a PNG or JPEG image")
    kind = image_format(data)
    if kind is None:
        raise BadRequest(415, "the body is not a PNG or JPEG image")
    with warnings.catch_warnings():
        # Pillow's own bomb check is a process-wide setting; ours is per server, so it is done
        # here from the header, and Pillow's warning about large images is not needed.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[kind])
        except Image.DecompressionBombError as exc:  # Pillow's own check, far above ours, fired first
            raise BadRequest(413, f"the image is too large, more than the server's limit of {max_pixels} pixels "
                                  f"(max_pixels): {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the client's file
            raise BadRequest(400, f"cannot read the {kind} image: {exc}") from None
        width, height = image.size
        if width * height > max_pixels:
            raise BadRequest(413, f"the image is {width}x{height} = {width * height} pixels, more than the "
                                  f"server's limit of {max_pixels} (max_pixels)")
        try:
            image.load()
            rgb = image.convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise BadRequest(400, f"cannot decode the {kind} image (truncated or corrupt): {exc}") from None
    return np.asarray(rgb, dtype=np.uint8)


def encode_png(array: np.ndarray) -> bytes:
    """A uint8 (H, W) or (H, W, 3) array as PNG bytes (fast compression: the client waits)."""
    import cv2

    data = array if array.ndim == 2 else np.ascontiguousarray(array[..., ::-1])  # OpenCV writes BGR
    ok, buf = cv2.imencode(".png", data, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
