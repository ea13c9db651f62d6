"""Cheap checks on image bytes that run before any pixel is decoded.

The API uses them to reject bad uploads before enqueueing; the worker repeats them before it
decodes, so a job that reached Redis some other way (the producer, a script) is held to the
same limits. Only headers are read: a 50,000 x 50,000 PNG costs nothing to refuse.
"""

from __future__ import annotations

import io
import re
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


# File name suffixes of the formats above (lower case), for folders of scans.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})

# Media types (as data URLs declare them) of the formats we read; aliases clients send too.
MEDIA_TYPES: dict[str, str] = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
    "image/x-bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/webp": "webp",
}


# Formats we refuse, with what to do instead.
_REFUSED: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF is a document, not an image: render its pages first (batchocr-submit does)"),
    (b"GIF8", "GIF is not supported: convert to PNG (animated GIFs have no single page to read)"),
)


# EXIF orientation tag (0x0112): 1 = upright; 2-8 = how the stored pixels must be turned.
ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: format name, stored size in pixels, whether it has transparency,
    and its EXIF orientation (1-8, 1 = upright or untagged)."""

    format: str
    width: int
    height: int
    has_alpha: bool = False
    orientation: int = 1


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


def check_media_type(media_type: str, data: bytes) -> None:
    """Check that bytes declared as ``media_type`` (lower case) are what it says.

    Raises:
        UnsupportedImageError: the type is not an image, or not one we read, or the magic
            bytes are another format (or none).
    """
    declared = MEDIA_TYPES.get(media_type)
    if declared is None:
        if media_type.startswith("image/"):
            raise UnsupportedImageError(f"{media_type} is not supported (expected PNG, JPEG, TIFF, BMP or WebP)")
        raise UnsupportedImageError(f"the data is declared as {media_type}, which is not an image")
    found = sniff_format(data)
    if found != declared:
        raise UnsupportedImageError(f"the data is declared as {media_type} but its bytes are a {found.upper()} image")


# libpng refuses rows or columns past 1,000,000 pixels (OpenCV past 2**20): a longer side is
# refused at submit, not failed later as a corrupt image.
MAX_SIDE = 1_000_000


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
                alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
                orientation = _orientation(img)
                multipage = fmt == "tiff" and _has_second_frame(img)
                wide = fmt == "tiff" and img.mode in ("F", "I")  # 32-bit float or integer samples
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLargeError(f"image declares too many pixels; the limit is {max_pixels}") from None
    except Exception as exc:  # Pillow raises many types for broken headers
        reason = re.sub(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>", "", str(exc))  # no object reprs in a client's error
        raise ImageDecodeError(f"cannot read the {fmt} header: {reason}") from None
    if width < 1 or height < 1:
        raise ImageDecodeError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageTooLargeError(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
    if max(width, height) > MAX_SIDE:
        raise ImageTooLargeError(f"image is {width}x{height} pixels; a side may be at most {MAX_SIDE:,} pixels "
                                 "(the decoders' limit)")
    if multipage:
        raise UnsupportedImageError(
            "a multi-page TIFF is a document: submit one page per job (batchocr-submit does)")
    if wide:
        raise UnsupportedImageError("a TIFF with 32-bit (float or integer) samples cannot be read: "
                                    "save it with 8- or 16-bit samples")
    return ImageInfo(fmt, width, height, alpha, orientation)


def _has_second_frame(img: Image.Image) -> bool:
    """Whether a TIFF has a second page, found by seeking to it: ``n_frames`` walks every page's
    header chain, which took minutes for a 20 MB file of 184,000 one-pixel pages."""
    try:
        img.seek(1)
    except EOFError:
        return False
    return True


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation read from what precedes the pixel data (EXIF, a PNG's raw profile,
    XMP, a TIFF's tag). ``Image.Image.getexif`` is called past the PNG plugin's override, which
    decodes the whole image to look for an eXIf chunk after the pixels: nothing here may decode
    pixels before the size limits are checked. A broken EXIF block is no reason to refuse an
    image: it reads as upright."""
    try:
        value = Image.Image.getexif(img).get(ORIENTATION_TAG, 1)
    except Exception:  # Pillow raises many types for malformed EXIF
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1
