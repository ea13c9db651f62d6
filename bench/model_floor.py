"""The physical floor of page OCR on each backend: time inside the models (detector, recogniser,
line classifier) per page against the pipeline's whole time per page, i.e. system efficiency.

    .venv/bin/python -m bench.model_floor [--set sroie_receipts ...] [--backend onnxruntime --backend openvino:bf16]

Each backend's pipeline is warmed up as a worker's is (``worker.warm_up``) and reads every page
of the set once untimed (shapes compiled), then once timed, in groups of 8 as a worker batches
them; every engine call is timed on the side. Backends alternate within one process, 2 threads.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.accuracy import EVAL
from bench.page_speed import ALL_SETS
from shared.settings import Settings
from worker.offline.evaluation import page_items
from worker.pipeline import OcrPipeline, PageTask
from worker.preprocess import decode_image
from worker.warm_up import warm_up


class Timed:
    """An engine whose calls add their seconds to ``spent``."""

    def __init__(self, engine, spent: list[float]) -> None:
        self.engine, self.spent = engine, spent

    def __call__(self, batch):
        start = time.perf_counter()
        try:
            return self.engine(batch)
        finally:
            self.spent[0] += time.perf_counter() - start

    def map(self, batches):
        """The engine's ``map``, timed from asking for each output to getting it (batches are
        prepared on the side, so preparing them is timed too where a stream is free: an upper
        bound on the models' share)."""
        outputs = self.engine.map(batches)
        while True:
            start = time.perf_counter()
            try:
                output = next(outputs)
            except StopIteration:
                return
            finally:
                self.spent[0] += time.perf_counter() - start
            yield output

    def __getattr__(self, name):
        return getattr(self.engine, name)


def read(pipeline: OcrPipeline, images: list) -> float:
    start = time.perf_counter()
    for begin in range(0, len(images), 8):
        pipeline.run([PageTask(image, "page", "") for image in images[begin:begin + 8]])
    return time.perf_counter() - start


def timed_read(pipeline: OcrPipeline, images: list, spent: list[float]) -> float:
    """``read`` with every engine call timed into ``spent`` (engines restored afterwards)."""
    model, classifier = pipeline.model, pipeline.classifier
    engines = model.det, model.rec, model.cls
    model.det, model.rec, model.cls = (Timed(engine, spent) for engine in engines)
    if classifier is not None:
        classifier.engine = model.cls
    try:
        return read(pipeline, images)
    finally:
        model.det, model.rec, model.cls = engines
        if classifier is not None:
            classifier.engine = engines[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", choices=ALL_SETS)
    parser.add_argument("--backend", action="append")
    args = parser.parse_args()
    settings = Settings.from_env(intra_op_threads=2)
    pipelines = {}
    for name in args.backend or ["onnxruntime", "openvino:bf16"]:
        backend, _, precision = name.partition(":")
        pipeline = OcrPipeline.load(settings.default_model, settings.replace(backend=backend, precision=precision or "auto"))
        warm_up(pipeline, settings.warm_up_width)
        pipelines[pipeline.model.choice.label] = pipeline
    report = {}
    for set_name in args.set or ["sroie_receipts", "omnidocbench_pages"]:
        images = [decode_image(path.read_bytes(), settings) for path, _ in page_items(EVAL / set_name)]
        for label, pipeline in pipelines.items():
            read(pipeline, images)  # every shape of the set compiled / allocated once
            spent = [0.0]
            total = timed_read(pipeline, images, spent)
            report[f"{set_name}/{label}"] = {"ms_per_page": round(1000 * total / len(images)),
                                             "model_ms_per_page": round(1000 * spent[0] / len(images)),
                                             "efficiency": round(spent[0] / total, 3)}
            print(set_name, label, report[f"{set_name}/{label}"], flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
