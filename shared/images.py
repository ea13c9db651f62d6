"""Cheap checks on image bytes that run before any pixel is decoded.

The API uses them to reject bad uploads before enqueueing; the worker repeats them before it
decodes, so a job that reached Redis some other way (the producer, a script) is held to the
same limits. Only headers are read: a 50,000 x 50,000 PNG costs nothing to refuse.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from shared.errors import ImageDecodeError, ImageTooLargeError, UnsupportedImageError

# Magic bytes of the formats OpenCV decodes for us.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"BM", "bmp"),
)


# Formats we refuse, with what to do instead.
_REFUSED: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF is a document, not an image: render its pages first (batchocr-submit does)"),
    (b"GIF8", "GIF is not supported: convert to PNG (animated GIFs have no single page to read)"),
)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: format name, size in pixels, and whether it has transparency."""

    format: str
    width: int
    height: int
    has_alpha: bool = False


def sniff_format(data: bytes) -> str:
    """Name the image format from magic bytes, or raise UnsupportedImageError."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    for magic, reason in _REFUSED:
        if data.startswith(magic):
            raise UnsupportedImageError(reason)
    raise UnsupportedImageError("not a supported image (expected PNG, JPEG, TIFF, BMP or WebP bytes)")


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Check size limits and read the header's dimensions without decoding pixels.

    Raises:
        ImageTooLargeError: over ``max_bytes`` or ``max_pixels``.
        UnsupportedImageError: the magic bytes name no supported format.
        ImageDecodeError: the header is unreadable.
    """
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes; the limit is {max_bytes}")
    fmt = sniff_format(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                frames = int(getattr(img, "n_frames", 1) or 1) if fmt == "tiff" else 1
                alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"image declares too many pixels; the limit is {max_pixels}") from None
    except Exception as exc:  # Pillow raises many types for broken headers
        raise ImageDecodeError(f"cannot read the {fmt} header: {exc}") from None
    if width < 1 or height < 1:
        raise ImageDecodeError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
    if frames > 1:
        raise UnsupportedImageError(
            f"a multi-page TIFF ({frames} pages) is a document: submit one page per job (batchocr-submit does)")
    return ImageInfo(fmt, width, height, alpha)
