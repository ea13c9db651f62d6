"""A corpus of hostile and odd inputs, generated in memory, each with what must happen to it.

``expect`` is ``"rejected"`` (the API answers ``status`` with ``kind``), ``"finished"`` (a result
of ``size`` = (width, height) upright, whose text contains ``text``, or is empty when ``text`` is
``""``: nothing readable, so nothing may be made up), ``"failed"`` (the job fails with ``kind``) or
``"either"`` (a broken image that some decoder versions read partially: a result of ``size``,
whatever it reads, or a failure with ``kind``; both are right).
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image

from tests.helpers import ROOT

LINE_PATH = ROOT / "samples" / "lines" / "address.png"
LINE_TEXT = "Wallaby Way"


@dataclass
class Case:
    name: str
    request: dict[str, Any]
    expect: str
    status: int = 0
    kind: str = ""
    text: str | None = None
    size: tuple[int, int] | None = None


def line_image() -> Image.Image:
    return Image.open(LINE_PATH).convert("RGB")


def encode(image: Image.Image, fmt: str, **save: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def as_json(data: bytes, **fields: Any) -> dict[str, Any]:
    return {"json": {"image_base64": base64.b64encode(data).decode(), "mode": "line", **fields}}


def as_file(data: bytes, filename: str = "scan.png", **fields: Any) -> dict[str, Any]:
    return {"data": {"file": (io.BytesIO(data), filename), "mode": "line", **fields},
            "content_type": "multipart/form-data"}


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width`` x ``height`` (a decompression bomb's calling card)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\0" * 64)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
            + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
            + b"\0\0\0\0IEND\xaeB`\x82")


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small JPEG whose SOF0 header is patched to declare ``width`` x ``height``."""
    data = bytearray(encode(line_image(), "JPEG", quality=80))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def exif_rotated() -> bytes:
    """The line stored turned 90 degrees, with EXIF orientation 6 saying how to turn it back."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(line_image().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=92, exif=exif.tobytes())


def sixteen_bit() -> bytes:
    grey = np.asarray(line_image().convert("L"), dtype=np.uint16) * 257
    ok, png = cv2.imencode(".png", grey)
    assert ok
    return png.tobytes()


def on_transparent() -> bytes:
    """Dark text whose background is fully transparent black: wrong if alpha is dropped."""
    grey = np.asarray(line_image().convert("L"))
    rgba = np.zeros((*grey.shape, 4), np.uint8)
    rgba[:, :, 3] = 255 - grey
    return encode(Image.fromarray(rgba, "RGBA"), "PNG")


def strip(width: int, height: int) -> bytes:
    canvas = Image.new("RGB", (width, height), "white")
    line = line_image()
    canvas.paste(line.resize((min(line.width, width), min(line.height, height))), (0, 0))
    return encode(canvas, "PNG")


def tiff_of_pages(count: int) -> bytes:
    """A little-endian TIFF of ``count`` 1x1 bilevel pages sharing one strip byte, each page's
    header pointing at the next: ~100 bytes a page (counting its pages walks the whole chain)."""
    tags = ((256, 3, 1), (257, 3, 1), (258, 3, 1), (259, 3, 1), (262, 3, 1), (273, 4, 8), (278, 3, 1), (279, 4, 1))
    size = 2 + 12 * len(tags) + 4
    out = [b"II*\0", struct.pack("<I", 12), b"\0\0\0\0"]  # first page's header at 12, its strip byte at 8
    for page in range(count):
        following = 12 + (page + 1) * size if page + 1 < count else 0
        out.append(struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *tag[:2], 1, tag[2]) for tag in tags)
                   + struct.pack("<I", following))
    return b"".join(out)


def rejected_cases() -> list[Case]:
    png = LINE_PATH.read_bytes()
    gif = encode(line_image(), "GIF", save_all=True, append_images=[line_image().rotate(5)], duration=100)
    tiff = encode(line_image(), "TIFF", save_all=True, append_images=[line_image()])
    zero = bytearray(png_header(1, 1))
    zero[16:24] = b"\0" * 8
    return [
        Case("zero-byte file", as_file(b""), "rejected", 400, "missing_image"),
        Case("empty base64", as_json(b""), "rejected", 400, "missing_image"),
        Case("text file named .png", as_file(b"hello, world\n" * 20, "notes.png"), "rejected", 415, "unsupported_image"),
        Case("SVG", as_file(b'<svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>', "a.svg"), "rejected", 415, "unsupported_image"),
        Case("PDF", as_file(b"%PDF-1.7\n1 0 obj<<>>endobj\n%%EOF", "doc.pdf"), "rejected", 415, "unsupported_image"),
        Case("animated GIF", as_file(gif, "anim.gif"), "rejected", 415, "unsupported_image"),
        Case("multi-page TIFF", as_file(tiff, "pages.tif"), "rejected", 415, "unsupported_image"),
        Case("TIFF of float samples", as_file(encode(Image.fromarray(np.asarray(line_image().convert("L"), np.float32)),
                                                     "TIFF"), "float.tif"), "rejected", 415, "unsupported_image"),
        Case("TIFF of 16,000 one-pixel pages", as_file(tiff_of_pages(16_000), "pages.tif"), "rejected", 415,
             "unsupported_image"),
        Case("PNG bomb 50000x50000", as_file(png_header(50_000, 50_000), "bomb.png"), "rejected", 413, "image_too_large"),
        Case("JPEG declaring 65000x65000", as_json(jpeg_with_size(65_000, 65_000)), "rejected", 413, "image_too_large"),
        Case("PNG declaring 0x0", as_json(bytes(zero)), "rejected", 422, "undecodable_image"),
        Case("PNG 1x1,200,000 (past the decoders' side limit)", as_json(png_header(1, 1_200_000)), "rejected", 413,
             "image_too_large"),
        Case("BMP of six bytes", as_file(b"BM" + b"\0" * 4, "tiny.bmp"), "rejected", 422, "undecodable_image"),
        Case("PNG cut inside its header", as_json(png[:20]), "rejected", 422, "undecodable_image"),
        Case("invalid base64", {"json": {"image_base64": "!!not base64!!", "mode": "line"}}, "rejected", 400, "bad_base64"),
        Case("base64 not a string", {"json": {"image_base64": 12345}}, "rejected", 400, "bad_base64"),
        Case("data URL declaring another type", {"json": {"image_base64": "data:image/webp;base64,"
                                                           + base64.b64encode(png).decode()}}, "rejected", 415, "unsupported_image"),
        Case("oversized base64", as_json(b"\x89PNG\r\n\x1a\n" + b"\0" * (3 << 20)), "rejected", 413, "image_too_large"),
        Case("oversized upload", as_file(b"\x89PNG\r\n\x1a\n" + b"\0" * (3 << 20)), "rejected", 413, "image_too_large"),
        Case("JSON array body", {"json": [1, 2, 3]}, "rejected", 400, "bad_json"),
        Case("JSON cut short", {"data": b'{"image_base64": ', "content_type": "application/json"}, "rejected", 400, "bad_json"),
        Case("empty JSON body", {"data": b"", "content_type": "application/json"}, "rejected", 400, "bad_json"),
        Case("PNG bytes as text/plain", {"data": png, "content_type": "text/plain"}, "rejected", 400, "missing_image"),
        Case("form without a file", {"data": {"mode": "line"}, "content_type": "application/x-www-form-urlencoded"}, "rejected", 400, "missing_image"),
        Case("unknown option", as_json(png, colour="blue"), "rejected", 400, "bad_option"),
        Case("bad mode", as_json(png, mode="sideways"), "rejected", 400, "bad_option"),
        Case("bad lang", as_json(png, lang="klingon"), "rejected", 400, "bad_option"),
        Case("job id path", as_json(png, job_id="../../etc/passwd"), "rejected", 400, "bad_option"),
        Case("URL instead of an image", {"json": {"image_uri": "http://169.254.169.254/latest/meta-data"}}, "rejected", 400, "bad_option"),
        Case("S3 bucket not allowed", {"json": {"image_uri": "s3://someone-else/secret.png"}}, "rejected", 403, "forbidden_bucket"),
    ]


def accepted_cases() -> list[Case]:
    png = LINE_PATH.read_bytes()
    jpeg = encode(line_image(), "JPEG", quality=90)
    corrupt = bytearray(png)
    idat = corrupt.index(b"IDAT")
    corrupt[idat + 8 : idat + 40] = b"\x00" * 32
    line = {"text": LINE_TEXT, "size": line_image().size}
    broken = {"kind": "undecodable_image", "size": line_image().size}
    return [
        Case("1x1 pixel", as_json(encode(Image.new("RGB", (1, 1), "white"), "PNG")), "finished", text="", size=(1, 1)),
        # The line at its own size on a 30000 px strip is shrunk below legibility for detection.
        Case("30000x200 strip", as_json(strip(30_000, 200), mode="page"), "finished", text="", size=(30_000, 200)),
        Case("200x30000 strip", as_json(strip(200, 30_000), mode="page"), "finished", text="", size=(200, 30_000)),
        Case("blank 2000x2000 page", as_json(encode(Image.new("L", (2000, 2000), 255), "PNG"), mode="page"), "finished",
             text="", size=(2000, 2000)),
        Case("CMYK JPEG", as_json(encode(line_image().convert("CMYK"), "JPEG", quality=92)), "finished", **line),
        Case("16-bit PNG", as_json(sixteen_bit()), "finished", **line),
        Case("palette PNG", as_json(encode(line_image().convert("P"), "PNG")), "finished", **line),
        Case("grey PNG", as_json(encode(line_image().convert("L"), "PNG")), "finished", **line),
        Case("text on transparent background", as_json(on_transparent()), "finished", **line),
        Case("EXIF-rotated JPEG", as_json(exif_rotated()), "finished", **line),
        Case("BMP", as_json(encode(line_image(), "BMP")), "finished", **line),
        Case("data URL", {"json": {"image_base64": "data:image/png;base64," + base64.b64encode(png).decode(),
                                   "mode": "line"}}, "finished", **line),
        Case("WebP", as_json(encode(line_image(), "WEBP", quality=95)), "finished", **line),
        Case("file name climbing out", as_file(png, "../../../etc/passwd"), "finished", **line),
        Case("odd unicode file name", as_file(png, "ｓｃａｎ ✓ 扫描 " + "x" * 300 + ".png"), "finished", **line),
        Case("truncated PNG", as_json(png[: len(png) * 6 // 10]), "failed", kind="undecodable_image"),
        # Partly decoded, these show part of the line, or noise: no text can be required of them.
        Case("PNG with corrupt pixel data", as_json(bytes(corrupt)), "either", **broken),
        Case("truncated JPEG", as_json(jpeg[: len(jpeg) // 2]), "either", **broken),
    ]


def png_bomb(width: int, height: int) -> bytes:
    """A real grey PNG of ``width`` x ``height`` zeros: a few hundred KB that decode to
    ``3 * width * height`` bytes of BGR, so decoding it before the limits is seen in memory."""
    row = b"\0" * (width + 1)  # filter byte + pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
