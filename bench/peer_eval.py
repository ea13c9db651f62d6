"""Score a peer OCR system on an eval folder with batchocr's own scoring (one process per run).

    python -m bench.peer_eval --system rapidocr|tesseract --data DIR [--ignore-case] [--lang eng]
        [--rotate DEGREES] --json OUT

RapidOCR 3.10: its full default pipeline (det + cls + rec) for pages, recognition only for line
crops, onnxruntime with the same thread count as batchocr. Tesseract 5 (Debian): ``--psm 7`` for
lines, default page segmentation with line boxes from its TSV output for pages.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from worker.detect import TALL
from worker.offline.evaluation import (
    detect_mode,
    line_items,
    page_items,
    speed_figures,
    turn,
    upright_box,
)
from worker.offline.page_scores import PageScores
from worker.offline.scoring import ErrorCount, normalize


class RapidOcrPeer:
    def __init__(self, threads: int) -> None:
        from rapidocr import RapidOCR

        self.engine = RapidOCR(params={
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "Global.log_level": "error",
        })

    def line(self, path: Path) -> str:
        out = self.engine(str(path), use_det=False, use_cls=False, use_rec=True)
        return "".join(out.txts or ())

    def page(self, image) -> list[tuple[str, list]]:
        out = self.engine(image)
        if out.txts is None:
            return []
        return [(text, _text_corners(box).tolist()) for text, box in zip(out.txts, out.boxes)]


def _text_corners(box: np.ndarray) -> np.ndarray:
    """A RapidOCR box (4 x 2, clockwise from the image's top-left) from the text's own top-left,
    as batchocr gives boxes: RapidOCR reads a crop at least 1.5 times taller than wide turned a
    quarter counter-clockwise (as ``worker.detect.crop_quad`` does), so the text starts at the
    box's top-right. Scoring takes a line's height from its first and last corner."""
    box = np.asarray(box, np.float64)
    width, height = np.linalg.norm(box[1] - box[0]), np.linalg.norm(box[3] - box[0])
    return np.roll(box, -1, axis=0) if height >= TALL * width else box


class TesseractPeer:
    def __init__(self, lang: str, threads: int) -> None:
        self.lang = lang
        self.env = dict(os.environ, OMP_THREAD_LIMIT=str(threads))

    def _run(self, path: Path, *args: str) -> str:
        command = ["tesseract", str(path), "stdout", "-l", self.lang, *args]
        return subprocess.run(command, capture_output=True, text=True, check=True, env=self.env).stdout

    def _run_image(self, image, *args: str) -> str:
        with tempfile.NamedTemporaryFile(suffix=".png") as file:
            cv2.imwrite(file.name, image)
            return self._run(Path(file.name), *args)

    def line(self, path: Path) -> str:
        return self._run(path, "--psm", "7").strip()

    def page(self, image) -> list[tuple[str, list]]:
        rows = csv.DictReader(io.StringIO(self._run_image(image, "tsv")), delimiter="\t", quoting=csv.QUOTE_NONE)
        lines: dict[tuple, list[dict]] = {}
        for row in rows:
            if row["level"] == "5" and row["text"].strip():
                lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(row)
        result = []
        for words in lines.values():
            x0 = min(int(w["left"]) for w in words)
            y0 = min(int(w["top"]) for w in words)
            x1 = max(int(w["left"]) + int(w["width"]) for w in words)
            y1 = max(int(w["top"]) + int(w["height"]) for w in words)
            text = " ".join(w["text"] for w in words)
            result.append((text, [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]))
        return result


def evaluate(peer, data: Path, ignore_case: bool, rotate: float = 0) -> dict:
    mode = detect_mode(data)
    start = time.perf_counter()
    if mode == "line":
        count, exact = ErrorCount(), 0
        items = line_items(data)
        for path, label in items:
            text = peer.line(path)
            exact += normalize(text, ignore_case) == normalize(label, ignore_case)
            count.add(text, label, ignore_case)
        figures = {"cer": count.cer, "exact": exact / max(1, len(items))}
    else:
        scores = PageScores(ignore_case)
        items = page_items(data)
        for path, labels in items:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            lines = peer.page(turn(image, rotate))
            boxes = [upright_box(box, rotate, image.shape) for _, box in lines]
            scores.add([text for text, _ in lines], boxes, labels, image.shape)
        figures = {**scores.figures(), "rotate": rotate}
    return {"set": data.name, "mode": mode, **figures, **speed_figures(len(items), time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=("rapidocr", "tesseract"), required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ignore-case", action="store_true")
    parser.add_argument("--lang", default="eng", help="Tesseract languages, e.g. chi_sim+eng")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rotate", type=float, default=0, help="page sets: turn pages this many degrees clockwise "
                        "(as batchocr-eval --rotate; boxes are turned back before scoring)")
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    peer = RapidOcrPeer(args.threads) if args.system == "rapidocr" else TesseractPeer(args.lang, args.threads)
    figures = evaluate(peer, args.data, args.ignore_case, args.rotate)
    args.json.write_text(json.dumps({"system": args.system, **figures}, indent=2))
    print(json.dumps({"system": args.system, **figures}))


if __name__ == "__main__":
    main()
