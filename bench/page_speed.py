"""Pages/s of batchocr's pipeline vs RapidOCR 3.10's full pipeline, interleaved, medians.

    .venv/bin/python -m bench.page_speed [--rounds 3] [--threads 2] [--model V ...] [--width-scale S ...]
        [--lang L ...] [--det-max-side N ...] [--orientation on --orientation off]

One process holds both (same cores, same ONNX Runtime, 2 intra-op threads each); every round
times each system over every page set, alternating which goes first. batchocr runs pages in
groups of 8 (a worker's max_batch); RapidOCR one page per call, its only mode.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2

from bench.peer_eval import RapidOcrPeer
from shared.charsets import LANGS
from shared.settings import Settings
from worker.lexicon import english
from worker.model_loading import load_model
from worker.offline.evaluation import page_items
from worker.pipeline import OcrPipeline, PageTask

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
SETS = ("sroie_receipts", "omnidocbench_pages")


def time_ours(engine: tuple[OcrPipeline, str], paths: list[Path]) -> float:
    pipeline, lang = engine
    start = time.perf_counter()
    for begin in range(0, len(paths), 8):
        pipeline.run([PageTask(cv2.imread(str(p)), "page", lang) for p in paths[begin : begin + 8]])
    return time.perf_counter() - start


def time_rapid(peer: RapidOcrPeer, paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        peer.page(str(path))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", action="append", help="our model version(s) to time (default: the default; "
                        "versions from OCR_MODEL_DIR work too)")
    parser.add_argument("--width-scale", action="append", type=float, help="recognition width scale(s) to time "
                        "(OCR_REC_WIDTH_SCALE; default: the model's own)")
    parser.add_argument("--lang", action="append", choices=LANGS, help="charset hint(s) to time, as the job option 'lang' "
                        "(default: OCR_DEFAULT_LANG, what a job that gives none gets)")
    parser.add_argument("--det-max-side", action="append", type=int, help="detection input limit(s) to time "
                        "(OCR_DET_MAX_SIDE; default: the deployment's)")
    parser.add_argument("--orientation", action="append", choices=("on", "off"), help="page orientation "
                        "(OCR_ORIENTATION) on and/or off, timed side by side (default: the deployment's)")
    args = parser.parse_args()
    settings = Settings.from_env(intra_op_threads=args.threads)
    models = {v: load_model(v, settings.threads, settings.ort_mem_arena, settings.model_dir) for v in args.model or [settings.default_model]}
    scales = args.width_scale or [settings.rec_width_scale]
    langs = args.lang or [settings.default_lang]
    sides = args.det_max_side or [settings.det_max_side]
    turns = [t == "on" for t in args.orientation] if args.orientation else [settings.orientation]
    ours = {f"ours:{v}" + (f"@{s:g}" if s else "") + f"+{lang}" + (f"/det{d}" if args.det_max_side else "")
            + (f"/orientation-{'on' if o else 'off'}" if args.orientation else ""):
            (OcrPipeline(model, settings.replace(rec_width_scale=s, det_max_side=d, orientation=o)), lang)
            for v, model in models.items() for s in scales for lang in langs for d in sides for o in turns}
    english()  # the word list lang=en/auto use: loaded once per worker process, not timed
    rapid = RapidOcrPeer(args.threads)
    pages = {name: [path for path, _ in page_items(EVAL / name)] for name in SETS}
    systems = [*((key, time_ours, engine) for key, engine in ours.items()), ("rapidocr", time_rapid, rapid)]
    times: dict[str, list[float]] = {f"{s}/{n}": [] for n in SETS for s, _, _ in systems}
    for round_no in range(args.rounds):
        for name in SETS:
            for system, timer, engine in systems if round_no % 2 == 0 else systems[::-1]:
                times[f"{system}/{name}"].append(timer(engine, pages[name]))
        print(f"round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    report: dict[str, dict] = {}
    for name in SETS:
        rapid_s = statistics.median(times[f"rapidocr/{name}"])
        report[name] = {"pages": len(pages[name]), "rapidocr_pages_per_s": round(len(pages[name]) / rapid_s, 3)}
        for key in ours:
            ours_s = statistics.median(times[f"{key}/{name}"])
            report[name][key] = {"pages_per_s": round(len(pages[name]) / ours_s, 3),
                                 "speedup_vs_rapidocr": round(rapid_s / ours_s, 2)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
