"""EXIF orientation on every decode path: a real scanned line, stored turned and tagged with
each of the eight orientations, reads as the upright scan does, whether it is colour, grey,
16-bit, palette, CMYK or transparent, in PNG, JPEG, TIFF or WebP."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image

from shared.images import ORIENTATION_TAG, inspect_image
from worker.pipeline import PageTask
from worker.preprocess import decode_image
from tests.helpers import eval_lines

# Pillow's transpose that stores the upright image so that orientation N turns it back.
STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def scan() -> Image.Image:
    """A line crop from a scanned UW-III journal page (greyscale)."""
    data, _ = eval_lines("uw3_lines", 1)[0]
    return Image.open(io.BytesIO(data)).convert("RGB")


def exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[ORIENTATION_TAG] = orientation
    return tags.tobytes()


def pillow(mode: str, fmt: str, **save) -> Callable[[Image.Image, int], bytes]:
    def encode(image: Image.Image, orientation: int) -> bytes:
        out = io.BytesIO()
        image.convert(mode).save(out, format=fmt, exif=exif(orientation), **save)
        return out.getvalue()

    return encode


def on_transparent(mode: str, fmt: str, **save) -> Callable[[Image.Image, int], bytes]:
    """Black text whose background is transparent (alpha = ink): wrong if alpha is dropped."""
    def encode(image: Image.Image, orientation: int) -> bytes:
        ink = 255 - np.asarray(image.convert("L"))
        pixels = np.zeros((*ink.shape, 4), np.uint8)
        pixels[:, :, 3] = ink
        out = io.BytesIO()
        Image.fromarray(pixels, "RGBA").convert(mode).save(out, format=fmt, exif=exif(orientation), **save)
        return out.getvalue()

    return encode


def palette_with_transparency(image: Image.Image, orientation: int) -> bytes:
    out = io.BytesIO()
    palette = image.convert("P")
    palette.save(out, format="PNG", transparency=palette.getpixel((0, 0)), exif=exif(orientation))
    return out.getvalue()


def sixteen_bit_grey(image: Image.Image, orientation: int) -> bytes:
    pixels = np.asarray(image.convert("L")).astype("<u2") * 257
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG", exif=exif(orientation))
    return out.getvalue()


def sixteen_bit_rgba(image: Image.Image, orientation: int) -> bytes:
    """A 16-bit RGBA PNG (which Pillow cannot write) with an eXIf chunk spliced in after IHDR."""
    pixels = np.asarray(image.convert("RGBA"))[:, :, [2, 1, 0, 3]].astype(np.uint16) * 257
    ok, png = cv2.imencode(".png", pixels)
    assert ok
    body = b"eXIf" + exif(orientation).removeprefix(b"Exif\x00\x00")
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    data = png.tobytes()
    return data[:33] + chunk + data[33:]


PATHS = {
    "colour PNG": pillow("RGB", "PNG"),
    "colour JPEG": pillow("RGB", "JPEG", quality=95),
    "colour TIFF": pillow("RGB", "TIFF"),
    "colour WebP": pillow("RGB", "WEBP", lossless=True),
    "grey PNG": pillow("L", "PNG"),
    "grey JPEG": pillow("L", "JPEG", quality=95),
    "grey TIFF": pillow("L", "TIFF"),
    "16-bit grey PNG": sixteen_bit_grey,
    "16-bit RGBA PNG": sixteen_bit_rgba,
    "palette PNG": pillow("P", "PNG"),
    "palette PNG with transparency": palette_with_transparency,
    "CMYK JPEG": pillow("CMYK", "JPEG", quality=95),
    "CMYK TIFF": pillow("CMYK", "TIFF"),
    "RGBA PNG on transparent": on_transparent("RGBA", "PNG"),
    "grey + alpha PNG on transparent": on_transparent("LA", "PNG"),
    "RGBA TIFF on transparent": on_transparent("RGBA", "TIFF"),
    "RGBA WebP on transparent": on_transparent("RGBA", "WEBP", lossless=True),
}


def turned(encode: Callable[[Image.Image, int], bytes], orientation: int) -> bytes:
    image = scan()
    if STORED[orientation] is not None:
        image = image.transpose(STORED[orientation])
    return encode(image, orientation)


@pytest.fixture(scope="module")
def pipeline(pipelines):
    return next(iter(pipelines.values()))


@pytest.fixture(scope="module")
def upright(pipeline, base_settings) -> tuple[tuple[int, ...], str]:
    image = decode_image(pillow("RGB", "PNG")(scan(), 1), base_settings)
    (result,) = pipeline.run([PageTask(image, "line")])
    assert len(result.text) > 10, "the scan reads as text at all"
    return image.shape, result.text


@pytest.mark.parametrize("path", PATHS)
def test_every_orientation_reads_as_the_upright_scan(pipeline, base_settings, upright, path):
    images = [turned(PATHS[path], orientation) for orientation in STORED]
    assert {inspect_image(data, max_bytes=1 << 30, max_pixels=1 << 30).orientation for data in images} == set(STORED)
    decoded = [decode_image(data, base_settings) for data in images]
    shape, text = upright
    assert [image.shape for image in decoded] == [shape] * len(STORED)
    results = pipeline.run([PageTask(image, "line") for image in decoded])
    assert [result.text for result in results] == [text] * len(STORED)


def test_a_tagged_transparent_png_job_reads_upright(client, make_worker, upright):
    """The report: an RGBA PNG with orientation 8, as a line job, finished with text ''."""
    data = turned(on_transparent("RGBA", "PNG"), 8)
    job = client.post("/v1/jobs", json={"image_base64": base64.b64encode(data).decode(), "mode": "line"})
    make_worker().work(burst=True)
    view = client.get(job.get_json()["links"]["self"]).get_json()
    assert view["status"] == "finished" and view["result"]["text"] == upright[1]


def test_a_broken_exif_block_reads_as_upright():
    out = io.BytesIO()
    scan().save(out, format="JPEG", exif=b"Exif\x00\x00garbage that is no TIFF header")
    assert inspect_image(out.getvalue(), max_bytes=1 << 30, max_pixels=1 << 30).orientation == 1
