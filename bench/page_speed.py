"""Pages/s of batchocr's pipeline vs RapidOCR 3.10's full pipeline, interleaved, medians.

    .venv/bin/python -m bench.page_speed [--rounds 3] [--threads 2] [--model V ...] [--width-scale S ...]
        [--lang L ...] [--det-max-side N ...] [--orientation on --orientation off]
        [--deskew on --deskew off] [--width-bucket N ...] [--backend onnxruntime --backend openvino:bf16]
        [--set funsd_forms --set tapuscorpus_fr]

One process holds both (same cores, same ONNX Runtime, 2 intra-op threads each); every round
times each system over every page set, alternating which goes first. batchocr runs pages in
groups of 8 (a worker's max_batch); RapidOCR one page per call, its only mode. Our models are
warmed up first, as a worker warms them at start (``worker.warm_up``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path

import cv2

from bench.peer_eval import RapidOcrPeer
from shared.charsets import LANGS
from shared.settings import Settings
from worker.lexicon import english
from worker.backend_choice import choose
from worker.engine import EngineOptions
from worker.model_loading import load_model, model_files
from worker.offline.evaluation import page_items
from worker.pipeline import OcrPipeline, PageTask
from worker.warm_up import warm_up

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"
SETS = ("sroie_receipts", "omnidocbench_pages")  # the default; --set names others
ALL_SETS = ("sroie_receipts", "omnidocbench_pages", "funsd_forms", "tapuscorpus_fr")


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


def variants(args: argparse.Namespace, settings: Settings) -> dict[str, tuple[OcrPipeline, str]]:
    """Our pipelines to time, one per combination of the values given (each option not given:
    the deployment's setting), keyed by what they vary: 'ours:VERSION[@SCALE]+LANG[/...]'."""
    runtimes = [tuple(b.split(":", 1)) if ":" in b else (b, "auto") for b in args.backend or
                [f"{settings.backend}:{settings.precision}"]]
    options = EngineOptions.from_settings(settings)
    models = {}
    for version in args.model or [settings.default_model]:
        for backend, precision in runtimes:
            choice = choose(backend, precision, version, model_files(version, settings.model_dir))
            model = load_model(version, choice, options, settings.model_dir)
            models[f"{version}/{model.choice.label}" if args.backend else version] = model
    switches = {"on": True, "off": False}
    axes = {  # setting -> [(label or "", value)]
        "rec_width_scale": [(f"@{s:g}" if s else "", s) for s in args.width_scale or [settings.rec_width_scale]],
        "det_max_side": [(f"/det{d}" if args.det_max_side else "", d) for d in args.det_max_side or [settings.det_max_side]],
        "orientation": [(f"/orientation-{o}", switches[o]) for o in args.orientation] if args.orientation
        else [("", settings.orientation)],
        "deskew": [(f"/deskew-{o}", switches[o]) for o in args.deskew] if args.deskew else [("", settings.deskew)],
        "rec_width_bucket": [(f"/bucket{b}" if args.width_bucket else "", b)
                             for b in args.width_bucket or [settings.rec_width_bucket]],
    }
    ours = {}
    for version, model in models.items():
        for lang in args.lang or [settings.default_lang]:
            for combo in itertools.product(*axes.values()):
                labels = [label for label, _ in combo]
                key = f"ours:{version}{labels[0]}+{lang}{''.join(labels[1:])}"
                changes = {name: value for name, (_, value) in zip(axes, combo)}
                ours[key] = (OcrPipeline(model, settings.replace(**changes)), lang)
    return ours


def _parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--deskew", action="append", choices=("on", "off"), help="leveling skewed pages "
                        "(OCR_DESKEW) on and/or off, timed side by side (default: the deployment's)")
    parser.add_argument("--width-bucket", action="append", type=int, help="recognition width bucket(s) to time "
                        "(OCR_REC_WIDTH_BUCKET; default: the deployment's)")
    parser.add_argument("--backend", action="append", help="inference backend(s) to time, as BACKEND[:PRECISION] "
                        "(onnxruntime, openvino, openvino:bf16; default: OCR_BACKEND / OCR_PRECISION)")
    parser.add_argument("--set", action="append", choices=ALL_SETS, help="page set(s) to time (default: "
                        f"{', '.join(SETS)})")
    return parser


def main() -> None:
    args = _parser().parse_args()
    sets = tuple(args.set or SETS)
    settings = Settings.from_env(intra_op_threads=args.threads)
    ours = variants(args, settings)
    for pipeline in {id(p.model): p for p, _ in ours.values()}.values():
        warm_up(pipeline, settings.warm_up_width)  # as a worker does at start (OpenVINO compiles per shape)
    english()  # the word list lang=en/auto use: loaded once per worker process, not timed
    rapid = RapidOcrPeer(args.threads)
    pages = {name: [path for path, _ in page_items(EVAL / name)] for name in sets}
    systems = [*((key, time_ours, engine) for key, engine in ours.items()), ("rapidocr", time_rapid, rapid)]
    times: dict[str, list[float]] = {f"{s}/{n}": [] for n in sets for s, _, _ in systems}
    for round_no in range(args.rounds):
        for name in sets:
            for system, timer, engine in systems if round_no % 2 == 0 else systems[::-1]:
                times[f"{system}/{name}"].append(timer(engine, pages[name]))
        print(f"round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    report: dict[str, dict] = {}
    for name in sets:
        rapid_s = statistics.median(times[f"rapidocr/{name}"])
        report[name] = {"pages": len(pages[name]), "rapidocr_pages_per_s": round(len(pages[name]) / rapid_s, 3)}
        for key in ours:
            ours_s = statistics.median(times[f"{key}/{name}"])
            report[name][key] = {"pages_per_s": round(len(pages[name]) / ours_s, 3),
                                 "speedup_vs_rapidocr": round(rapid_s / ours_s, 2)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
