"""How exactly PDF readers extract the searchable PDF's text layer, and what the PDF weighs.

    .venv/bin/python -m bench.pdf_layer [--pages 8] [--set sroie_receipts ...] [--renderer OLD.py]

Real scans from ../shared/eval are OCRed once (default settings, ONNX Runtime), each page's
result goes through ``producer.formats.pdf.render`` (and, with ``--renderer``, through an older
``pdf.py`` given as a file, for a before/after), and the PDF's text is read back with poppler's
``pdftotext``, pdf.js (``tools/pdfjs``) and PDFium. Fidelity is the character error rate of each reader's text
against the OCR text itself (whitespace removed, no Unicode normalisation: a ² read back as 2
counts, line order as the reader gives it), so 0 means the reader lost, added or changed no character; ``lost`` counts the OCR text's characters
missing from a reader's text whatever their order (pdftotext orders columns its own way). Sizes: the PDF against the scan's bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pypdfium2
from rapidfuzz.distance import Levenshtein

from bench.accuracy import EVAL
from producer.formats import pdf
from producer.formats.layout import PageOutput
from shared.settings import Settings
from worker.offline.evaluation import page_images, read_image
from worker.pipeline import OcrPipeline, PageTask

PDFJS = Path(__file__).resolve().parent.parent / "tools" / "pdfjs" / "extract.mjs"  # npm ci --prefix tools/pdfjs
SETS = ["sroie_receipts", "funsd_forms", "tapuscorpus_fr", "omnidocbench_pages"]


def ocr_pages(pipeline: OcrPipeline, paths: list[Path]) -> list[tuple[PageOutput, bytes]]:
    """Each scan's OCR as the producer receives it (a result document), with its bytes."""
    out = []
    for path in paths:
        image = read_image(path, pipeline.settings)
        (result,) = pipeline.run([PageTask(image, "page", "")])
        lines = [line.to_json() for line in result.lines]
        document = {"width": image.shape[1], "height": image.shape[0], "lines": lines}
        out.append((PageOutput(1, path.stem, document, 300.0), path.read_bytes()))
    return out


def readers(data: bytes) -> dict[str, str]:
    """The PDF's text as pdftotext (its own reading order, and ``-raw``: the content's order),
    pdf.js and PDFium extract it."""
    texts = {}
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        for name, flags in (("pdftotext", []), ("pdftotext -raw", ["-raw"])):
            texts[name] = subprocess.run(["pdftotext", *flags, "-enc", "UTF-8", handle.name, "-"],
                                         capture_output=True, text=True, check=True, timeout=120).stdout
        texts["pdf.js"] = subprocess.run(["node", str(PDFJS), handle.name], capture_output=True, text=True,
                                         check=True, timeout=120).stdout
    texts["pdfium"] = "".join(page.get_textpage().get_text_range() for page in pypdfium2.PdfDocument(data))
    return texts


def load_renderer(path: Path | None):
    if path is None:
        return None
    spec = importlib.util.spec_from_file_location("old_pdf", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render


def measure(pages: list[tuple[PageOutput, bytes]], render) -> dict:
    names = ("pdftotext", "pdftotext -raw", "pdf.js", "pdfium")
    errors, lost = dict.fromkeys(names, 0), {name: Counter() for name in names}
    characters = scan_bytes = pdf_bytes = 0
    for page, scan in pages:
        data = render(page.job_id, [page], [scan])
        scan_bytes, pdf_bytes = scan_bytes + len(scan), pdf_bytes + len(data)
        truth = "".join("".join(line.text.split()) for line in page.lines)
        characters += len(truth)
        for name, text in readers(data).items():
            extracted = "".join(text.split())
            errors[name] += Levenshtein.distance(extracted, truth)
            lost[name] += Counter(truth) - Counter(extracted)
    return {"cer": {name: round(count / max(characters, 1), 5) for name, count in errors.items()},
            "errors": errors, "characters": characters,
            "lost": {name: sum(count.values()) for name, count in lost.items()},
            "lost_examples": {name: "".join(sorted(count))[:40] for name, count in lost.items()},
            "pdf_vs_scan": round(pdf_bytes / scan_bytes, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", help=f"page sets (default: {', '.join(SETS)})")
    parser.add_argument("--pages", type=int, default=8, help="pages per set (the first N)")
    parser.add_argument("--renderer", type=Path, help="an older producer/formats/pdf.py to compare")
    args = parser.parse_args()
    settings = Settings(backend="onnxruntime")
    pipeline = OcrPipeline.load(settings.default_model, settings)
    old = load_renderer(args.renderer)
    report = {}
    for name in args.set or SETS:
        pages = ocr_pages(pipeline, page_images(EVAL / name / "pages")[: args.pages])
        report[name] = {"now": measure(pages, pdf.render)}
        if old is not None:
            report[name]["before"] = measure(pages, old)
        print(name, json.dumps(report[name]), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
