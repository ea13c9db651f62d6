"""Line throughput through the whole system, batch cap 1 vs 8, against the model-only floor.

    .venv/bin/python -m bench.line_throughput [--jobs 400] [--rounds 3] [--threads 2]
        [--backend onnxruntime --backend openvino:bf16]

Per round, side by side on one machine: (a) enqueue N single-line jobs from ../shared/eval
(UW3 + OmniDocBench Chinese lines, cycled) through ``shared.jobs.submit``, run one in-process
BatchWorker until the queue is empty, and time enqueue -> last result, for cap 1 and cap 8;
(b) the same lines as preprocessed tensors straight into ``session.run`` in the same groups
(model-only floor). Prints medians over rounds, the cap-8/cap-1 ratio, system efficiency
(model-only time / end-to-end time) and how many lines read differently at cap 8 than at cap 1;
with several ``--backend``, each runs in the same rounds (order alternating), and the report
gives each one's cap-8 lines/s relative to the first.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from redis import Redis

from ops.redis_server import RedisServer
from shared import job_views, jobs
from shared.payload import JobOptions
from shared.settings import Settings
from worker.__main__ import build_worker, load_pipelines
from worker.pipeline import OcrPipeline
from worker.preprocess import pad_stack, rec_normalize, rec_width
from worker.recognize import plan_chunks, slot_width, spread

EVAL = Path(__file__).resolve().parent.parent.parent / "shared" / "eval"


def load_lines(count: int) -> list[bytes]:
    paths = []
    for name in ("uw3_lines", "omnidocbench_zh_lines"):
        for row in (EVAL / name / "labels.tsv").read_text("utf-8").splitlines():
            paths.append(EVAL / name / row.split("\t", 1)[0])
    return [paths[i % len(paths)].read_bytes() for i in range(count)]


def run_system(connection: Redis, settings: Settings, pipelines, images: list[bytes], cap: int):
    """Seconds from first enqueue to last result, and the texts in submission order."""
    connection.flushall()
    options = JobOptions(mode="line", model=settings.default_model)
    worker = build_worker(settings.replace(max_batch=cap), connection, pipelines=pipelines)
    start = time.perf_counter()
    ids = [jobs.submit(connection, settings, image, options).job.id for image in images]
    worker.work(burst=True, logging_level="WARNING")
    seconds = time.perf_counter() - start
    views = [job_views.describe(jobs.fetch(connection, job_id)) for job_id in ids]
    assert all(v["status"] == "finished" for v in views), "every job must finish"
    return seconds, [v["result"]["text"] for v in views]


def run_model_only(pipeline: OcrPipeline, images: list[bytes], cap: int) -> float:
    """Seconds in session.run alone, for the same groups of ``cap`` lines and the same
    width-sorted chunks (``plan_chunks``) the worker forms; decoding and resizing are untimed."""
    model, settings = pipeline.model, pipeline.settings
    height, max_width = model.spec.rec_height, settings.rec_max_width
    crops = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in images]
    batches = []
    for begin in range(0, len(crops), cap):
        group = crops[begin : begin + cap]
        widths = [rec_width(c.shape, height, max_width, pipeline.width_scale) for c in group]
        slots = [slot_width(w, pipeline.tail_pad, settings.rec_width_bucket) for w in widths]
        for chunk in spread(plan_chunks(slots, settings.rec_chunk_width), model.rec.streams):
            tensors = [rec_normalize(group[i], height, widths[i]) for i in chunk]
            batches.append(pad_stack(tensors, slots[chunk[0]]))
    start = time.perf_counter()
    for _ in model.rec.map(batches):  # as the worker runs them: overlapped where the engine has streams
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backend", action="append", help="inference backend(s) to time side by side, as "
                        "BACKEND[:PRECISION] (default: onnxruntime)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    images = load_lines(args.jobs)
    with RedisServer() as server:
        base = Settings(redis_url=server.url, intra_op_threads=args.threads, queue_name="bench")
        systems = {}  # backend label -> (settings, pipelines), each warmed up as a worker is
        for name in args.backend or ["onnxruntime"]:
            backend, _, precision = name.partition(":")
            settings = base.replace(backend=backend, precision=precision or "auto")
            pipelines = load_pipelines(settings)
            systems[pipelines[settings.default_model].model.choice.label] = (settings, pipelines)
        connection = Redis.from_url(server.url)
        times: dict[str, list[float]] = {f"{label}/{kind}_{cap}": [] for label in systems
                                         for kind in ("system", "model") for cap in (1, 8)}
        texts = {}
        for round_no in range(args.rounds):
            order = list(systems.items()) if round_no % 2 == 0 else list(systems.items())[::-1]
            for label, (settings, pipelines) in order:
                for cap in (1, 8):
                    seconds, texts[label, cap] = run_system(connection, settings, pipelines, images, cap)
                    times[f"{label}/system_{cap}"].append(seconds)
                    times[f"{label}/model_{cap}"].append(run_model_only(pipelines[settings.default_model], images, cap))
            print(f"round {round_no + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in times.items()), flush=True)
    report = _report(args, list(systems), {k: statistics.median(v) for k, v in times.items()}, texts)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _report(args: argparse.Namespace, systems: list[str], med: dict[str, float], texts: dict) -> dict:
    """Medians as lines/s, each backend's cap ratio and efficiency, and cap 8 vs the first."""
    first = systems[0]
    lines_per_s = {k: round(args.jobs / v, 2) for k, v in med.items()}
    report = {
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}, threads={args.threads}",
        "jobs": args.jobs,
        "rounds": args.rounds,
        # the first backend's figures also unprefixed, as before --backend (bench.ab_revisions reads them)
        "lines_per_s": lines_per_s | {k.split("/", 1)[1]: v for k, v in lines_per_s.items() if k.startswith(first + "/")},
    }
    for label in systems:
        report[label] = {
            "ratio_system_8_vs_1": round(med[f"{label}/system_1"] / med[f"{label}/system_8"], 3),
            "efficiency_1": round(med[f"{label}/model_1"] / med[f"{label}/system_1"], 3),
            "efficiency_8": round(med[f"{label}/model_8"] / med[f"{label}/system_8"], 3),
            "lines_differing_cap8_vs_cap1": sum(a != b for a, b in zip(texts[label, 1], texts[label, 8])),
        }
    report["system_8_vs_first"] = {label: round(med[f"{first}/system_8"] / med[f"{label}/system_8"], 3)
                                   for label in systems}
    return report


if __name__ == "__main__":
    main()
