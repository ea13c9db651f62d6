"""Image decoding and recognition preprocessing (pure NumPy/OpenCV).

Recognition input follows the PP-OCR recipe: keep the aspect ratio, resize to the model's line
height, scale to [-1, 1] with ``(x / 255 - 0.5) / 0.5``, pad on the right with zeros.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from shared.errors import ImageDecodeError
from shared.images import inspect_image
from shared.settings import Settings

# Recognition models see time steps of 8 px; widths are kept multiples of this.
REC_STRIDE = 8


def decode_image(data: bytes, settings: Settings) -> np.ndarray:
    """Decode bytes to an H x W x 3 uint8 BGR array, after header checks on size limits.

    Grey, 16-bit, palette, CMYK and alpha images come out as 8-bit BGR (alpha composited on
    white), turned upright by their EXIF orientation. The orientation is read with the header
    and applied here for every format, because OpenCV applies it only on some of its paths
    (never with ``IMREAD_UNCHANGED``, which alpha needs); its TIFF decoder is the exception
    that always applies the TIFF Orientation tag itself, so TIFFs are not turned twice.

    Raises:
        ImageTooLargeError, UnsupportedImageError, ImageDecodeError: with a reason.
    """
    info = inspect_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
    buffer = np.frombuffer(data, dtype=np.uint8)
    flags = cv2.IMREAD_UNCHANGED if info.has_alpha else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(buffer, flags)
    if image is None or image.size == 0:
        raise ImageDecodeError("the image data is corrupt or truncated and could not be decoded")
    if info.has_alpha:
        image = _on_white(image)
    if info.format != "tiff":
        image = orient(image, info.orientation)
    return image


# How stored pixels are turned upright, per EXIF orientation (1, upright, is left as it is).
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # turned 180 degrees
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.swapaxes(0, 1),  # transposed
    6: lambda a: np.rot90(a, -1),  # needs 90 degrees clockwise
    7: lambda a: np.rot90(a, -1)[::-1],  # transversed
    8: lambda a: np.rot90(a, 1),  # needs 90 degrees counter-clockwise
}


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H x W or H x W x C, any dtype) upright by EXIF ``orientation`` 1-8,
    as viewers show them; returns a contiguous array."""
    turn = _UPRIGHT.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def _on_white(image: np.ndarray) -> np.ndarray:
    """Composite a transparent image over white: text on a transparent background is usually
    stored as dark pixels whose hidden colour channels are black too. Returns H x W x 3 uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 2:  # grey + alpha
        colour, alpha = cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR), image[:, :, 1]
    elif image.shape[2] == 4:
        colour, alpha = image[:, :, :3], image[:, :, 3]
    else:
        return np.ascontiguousarray(image[:, :, :3])
    weight = alpha.astype(np.float32)[:, :, None] / 255.0
    return (colour.astype(np.float32) * weight + 255.0 * (1.0 - weight)).astype(np.uint8)


def rec_width(crop_shape: tuple[int, ...], height: int, max_width: int, scale: float = 1.0) -> int:
    """Width (px) of a line crop after resizing it to ``height``, a multiple of REC_STRIDE.

    ``scale`` < 1 squeezes the line horizontally: PP-OCR recognisers were trained on lines
    squeezed into a fixed width and read a mildly narrowed line as well, at fewer pixels.
    """
    h, w = crop_shape[:2]
    width = math.ceil(height * w * scale / max(h, 1))
    width = math.ceil(width / REC_STRIDE) * REC_STRIDE
    return int(min(max(width, REC_STRIDE * 2), max_width))


def rec_normalize(crop: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a BGR line crop to ``height`` x ``width``; returns 3 x height x width float32."""
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)
    tensor = resized.astype(np.float32).transpose(2, 0, 1)
    tensor *= 2.0 / 255.0
    tensor -= 1.0
    return tensor


def pad_stack(tensors: list[np.ndarray], width: int) -> np.ndarray:
    """Stack 3 x H x w_i tensors into N x 3 x H x width, zero-padded on the right."""
    height = tensors[0].shape[1]
    batch = np.zeros((len(tensors), 3, height, width), dtype=np.float32)
    for i, tensor in enumerate(tensors):
        batch[i, :, :, : tensor.shape[2]] = tensor
    return batch
