"""Searchable PDFs made from real PDF inputs: output size against the input, through a whole run.

    .venv/bin/python -m bench.pdf_size FOLDER [--text-layer skip|redo|force] [--pdfa]

Every ``*.pdf`` in FOLDER goes through ``batchocr-submit --formats pdf,txt`` against the local
topology (fresh embedded Redis, the API, one worker), as a user runs it. Per file: pages, input
and output bytes, their ratio, the bytes the run added (the text layer, its font, the rewrite),
the bytes of the text layer itself (its content streams and font, as stored), the rest against
the input, and the characters of the txt output and of pdftotext's reading of the output. The
issue's goal for grafted PDFs: output <= 1.1 x the input plus the text layer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pikepdf
import pypdfium2

from ops.launcher import Topology


def run(folder: Path, extra: list[str]) -> tuple[list[dict], dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCR_") and k != "REDIS_URL"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp, Topology(workers=1, env=env, log_level="WARNING") as topology:
        tree, out = Path(tmp) / "tree", Path(tmp) / "out"
        tree.mkdir()
        inputs = sorted(folder.glob("*.pdf"))
        for path in inputs:
            shutil.copy(path, tree / path.name)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "producer.cli", str(tree), "--out", str(out), "--api",
                        topology.api_url, "--formats", "pdf,txt", "--no-progress", *extra], env=env,
                       stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        summary = json.loads((out / "_batchocr" / "summary.json").read_text())
        failures = out / "_batchocr" / "failures.jsonl"
        failed = failures.read_text() if failures.is_file() else ""
        for path in inputs:
            rows.append(_row(path, out / f"{path.name}.pdf", out / f"{path.name}.txt"))
    summary["seconds"] = round(seconds, 1)
    summary["failures"] = [json.loads(line) for line in failed.splitlines() if line.strip()]
    return rows, summary


def _row(source: Path, made: Path, text: Path) -> dict:
    row = {"file": source.name, "pages": len(pypdfium2.PdfDocument(source)), "input": source.stat().st_size}
    if not made.is_file():
        return {**row, "output": None}
    extracted = subprocess.run(["pdftotext", "-enc", "UTF-8", str(made), "-"], capture_output=True, text=True,
                               timeout=120).stdout
    layer = layer_bytes(made)
    return {**row, "output": made.stat().st_size, "ratio": round(made.stat().st_size / row["input"], 3),
            "added": made.stat().st_size - row["input"], "layer": layer,
            "rest_ratio": round((made.stat().st_size - layer) / row["input"], 3),
            "txt_chars": len("".join(text.read_text("utf-8").split())) if text.is_file() else 0,
            "pdftotext_chars": len("".join(extracted.split()))}


def layer_bytes(path: Path) -> int:
    """The stored bytes of what the text layer added: each page's prepended layer stream (the
    first of its contents, holding our font resource) and the font's streams, once."""
    total, fonts = 0, {}
    with pikepdf.open(path) as pdf:
        for page in pdf.pages:
            names = [name for name in (page.Resources.get("/Font") or {}).keys() if "BatchocrText" in str(name)]
            if not names:
                continue
            contents = page.obj.Contents
            first = contents[0] if isinstance(contents, pikepdf.Array) else contents
            total += len(first.read_raw_bytes())
            for name in names:
                font = page.Resources.Font[name]
                fonts[font.objgen] = font
        for font in fonts.values():
            descendant = font.DescendantFonts[0]
            for stream in (font.ToUnicode, descendant.CIDToGIDMap, descendant.FontDescriptor.FontFile2):
                total += len(stream.read_raw_bytes())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--text-layer", default="skip", choices=["skip", "redo", "force"])
    parser.add_argument("--pdfa", action="store_true")
    args = parser.parse_args()
    rows, summary = run(args.folder, ["--text-layer", args.text_layer] + (["--pdfa"] if args.pdfa else []))
    print(json.dumps(summary, indent=2))
    print("| file | pages | input bytes | output bytes | output ÷ input | text layer bytes | (output − layer) ÷ input "
          "| txt chars | pdftotext chars |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if row["output"] is None:
            print(f"| {row['file']} | {row['pages']} | {row['input']:,} | failed | | | | | |")
            continue
        print(f"| {row['file']} | {row['pages']} | {row['input']:,} | {row['output']:,} | {row['ratio']} | "
              f"{row['layer']:,} | {row['rest_ratio']} | {row['txt_chars']:,} | {row['pdftotext_chars']:,} |")
    total_in = sum(r["input"] for r in rows if r["output"] is not None)
    total_out = sum(r["output"] for r in rows if r["output"] is not None)
    print(f"\nall written: {total_out:,} / {total_in:,} bytes = {total_out / max(total_in, 1):.3f}")


if __name__ == "__main__":
    main()
