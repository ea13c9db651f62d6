"""Warm-up when a worker loads a model: each engine run once on the input shapes its first jobs
will meet, so they do not pay for first use (OpenVINO compiles kernels for every new input
shape, ~0.15 s for a line and ~0.4 s for a page on 2 cores; ONNX Runtime sizes its arena)."""

from __future__ import annotations

import logging
import time

import numpy as np

from worker.orientation import CLS_HEIGHT, CLS_WIDTH
from worker.pipeline import OcrPipeline
from worker.preprocess import REC_STRIDE
from worker.recognize import slot_width

logger = logging.getLogger(__name__)


BATCHED_WIDTH = 512  # up to here lines of one width often share a call: their batch sizes too
BATCH_SIZES = (1, 2, 4, 8)  # power-of-two chunks (worker.recognize.plan_chunks)


def on_every_stream(engine, batch: np.ndarray) -> None:
    """Run ``batch`` on each of the engine's inference streams (each compiles its own kernels)."""
    streams = getattr(engine, "streams", 1)
    if streams > 1:
        list(engine.map([batch] * streams))
    else:
        engine(batch)


def warm_up(pipeline: OcrPipeline, max_width: int) -> float:
    """Run the recogniser on blank lines of every width bucket up to ``max_width`` px (the input
    widths lines get: ``worker.recognize.slot_width``; at most the widest a line can get), one
    line each, and 2, 4 and 8 lines each up to ``BATCHED_WIDTH``; the detector on one blank
    A4-shaped page at the detection size; the line classifier on 1 and 8 lines (a page's
    voters). Recogniser shapes run on every stream it has (``worker.engine``). Returns the
    seconds it took (0 when ``max_width`` is 0: off). Engine call counts are reset afterwards:
    they count jobs' work only."""
    if max_width <= 0:
        return 0.0
    start = time.perf_counter()
    model, settings = pipeline.model, pipeline.settings
    bucket = max(REC_STRIDE, settings.rec_width_bucket)
    widest = min(max_width, slot_width(settings.rec_max_width, pipeline.tail_pad, bucket))
    for width in range(bucket, widest + 1, bucket):
        for lines in BATCH_SIZES if width <= BATCHED_WIDTH else BATCH_SIZES[:1]:
            if lines * width <= max(width, settings.rec_chunk_width):
                on_every_stream(model.rec, np.zeros((lines, 3, model.spec.rec_height, width), np.float32))
    long_side = max(32, settings.det_max_side // 32 * 32)
    model.det(np.zeros((1, 3, long_side, max(32, long_side * 3 // 4 // 32 * 32)), np.float32))
    engines = [model.rec, model.det]
    if model.cls is not None:
        for lines in (1, 8):
            model.cls(np.zeros((lines, 3, CLS_HEIGHT, CLS_WIDTH), np.float32))
        engines.append(model.cls)
    for engine in engines:
        engine.calls = 0
    seconds = time.perf_counter() - start
    logger.info("model %s warmed up in %.1f s (line widths up to %d px, one page)", model.spec.name, seconds,
                widest)
    return seconds
