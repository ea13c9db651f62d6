"""PDF/A-2b for the searchable PDFs made from scans (``batchocr-submit --pdfa``).

What PDF/A-2b asks of these files, and how it is met: every font used embedded (the text
layer's glyphless font is; the unused Helvetica ReportLab lists on every page is removed with
the empty text object that names it), device colour tied to an output intent (an sRGB ICC
profile from Pillow's littleCMS), XMP metadata that declares the part and conformance and agrees
with the document information, a file identifier (qpdf writes one), no encryption. Scans whose
JPEG is CMYK would need a CMYK output intent: those are refused with a reason.
"""

from __future__ import annotations

import functools

import pikepdf

from producer.formats.content_edit import drop_empty_text


@functools.cache
def srgb_profile() -> bytes:
    """An sRGB ICC profile (Pillow's built-in, ~600 bytes)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def make_pdfa(pdf: pikepdf.Pdf) -> None:
    """Turn a PDF of scans with the text layer (``producer.formats.pdf.render``) into
    PDF/A-2b, in place (the metadata's part and conformance are written by the caller's
    ``open_metadata`` through ``pdfa_metadata``)."""
    for page in pdf.pages:
        drop_empty_text(pdf, page)
        fonts = page.Resources.get(pikepdf.Name.Font)
        if fonts is not None:
            for name in [key for key in fonts.keys() if not key.startswith("/BatchocrText")]:
                del fonts[name]
        for image in page.Resources.get(pikepdf.Name.XObject, {}).values():
            if image.get(pikepdf.Name.ColorSpace) == pikepdf.Name.DeviceCMYK:
                raise ValueError("PDF/A with a CMYK scan needs a CMYK output intent: convert the scan to RGB")
    profile = pdf.make_stream(srgb_profile(), N=3)
    pdf.Root.OutputIntents = pikepdf.Array([pikepdf.Dictionary(
        Type=pikepdf.Name.OutputIntent, S=pikepdf.Name.GTS_PDFA1, OutputConditionIdentifier="sRGB IEC61966-2.1",
        Info="sRGB IEC61966-2.1", RegistryName="http://www.color.org", DestOutputProfile=profile)])


def pdfa_metadata(meta) -> None:
    """Declare PDF/A-2b in an open XMP metadata block."""
    meta["pdfaid:part"] = "2"
    meta["pdfaid:conformance"] = "B"
