"""The OCR pipeline over a batch of decoded images: detect -> crop -> batched recognise.

Every line of every image in the batch goes to recognition together (width-sorted chunks), so
eight single-line jobs cost one recognition call. If the batched pass raises, each image is
run on its own so that one bad input fails only its own job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from shared.document import Line
from shared.payload import resolve_lang
from shared.settings import Settings
from worker.detect import DetParams, crop_quad, db_boxes, det_preprocess, reading_order
from worker.ctc import Hint
from worker.lexicon import english
from worker.model_loading import OcrModel, load_model
from worker.reading_order import ordered_lines
from worker.recognize import recognize_lines

logger = logging.getLogger(__name__)


@dataclass
class PageTask:
    """One job's decoded image. ``mode`` is 'line' (the image is one line) or 'page';
    ``lang`` is a charset hint (``shared.charsets``: 'all' = the model's whole vocabulary,
    'en' = printable ASCII, 'auto' = English lines found and read as such, '' = the
    deployment's ``OCR_DEFAULT_LANG``)."""

    image: np.ndarray
    mode: str
    lang: str = ""


@dataclass
class PageResult:
    """Recognised lines of one image, in reading order, with per-stage milliseconds.

    ``lines``: the result contract's lines (``shared.document.Line``).
    """

    lines: list[Line] = field(default_factory=list)
    detection_ms: float = 0.0
    recognition_ms: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class OcrPipeline:
    """Runs batches of PageTasks through one loaded model."""

    def __init__(self, model: OcrModel, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self.det_params = DetParams(
            max_side=settings.det_max_side,
            min_side=settings.det_min_side,
            thresh=settings.det_thresh,
            box_thresh=settings.det_box_thresh,
            unclip_ratio=settings.det_unclip_ratio,
        )
        # Recognition knobs a model may fix for itself; the deployment's settings otherwise.
        spec = model.spec
        self.tail_pad = settings.rec_tail_pad if spec.rec_tail_pad is None else spec.rec_tail_pad
        self.width_scale = settings.rec_width_scale or spec.rec_width_scale

    @classmethod
    def load(cls, version: str, settings: Settings) -> OcrPipeline:
        """Build model ``version``'s sessions with the settings' threads, arena and model dir."""
        return cls(load_model(version, settings.threads, settings.ort_mem_arena, settings.model_dir), settings)

    def hint(self, lang: str) -> Hint:
        """How the lines of a job with charset hint ``lang`` are decoded (``worker.ctc``);
        '' is the deployment's ``OCR_DEFAULT_LANG``, as for a job."""
        lang = resolve_lang(lang, self.settings)
        if lang == "all":
            return Hint()
        words = english()
        return Hint(self.model.charset_classes(lang), words if self.settings.lexicon else None,
                    words if lang == "auto" else None)

    def detect(self, image: np.ndarray) -> np.ndarray:
        """Text boxes of one page in reading order: K x 4 x 2 float32 image coordinates."""
        tensor, sx, sy = det_preprocess(image, self.det_params.max_side, self.det_params.min_side)
        prob = self.model.det(tensor)[0, 0]
        quads, _ = db_boxes(prob, self.det_params, sx, sy, image.shape)
        return quads[reading_order(quads)]

    def run(self, tasks: list[PageTask]) -> list[PageResult | Exception]:
        """OCR a batch; returns one PageResult, or the exception that failed it, per task."""
        try:
            return list(self._run_batch(tasks))
        except Exception:
            if len(tasks) == 1:
                raise
            logger.warning("batched OCR of %d images failed; retrying one by one", len(tasks), exc_info=True)
        results: list[PageResult | Exception] = []
        for task in tasks:
            try:
                results.extend(self._run_batch([task]))
            except Exception as exc:  # isolate: this task fails, its batch-mates do not
                results.append(exc)
        return results

    def _run_batch(self, tasks: list[PageTask]) -> list[PageResult]:
        results = [PageResult() for _ in tasks]
        crops: list[np.ndarray] = []
        owners: list[tuple[int, list[list[float]]]] = []
        for index, task in enumerate(tasks):
            start = time.perf_counter()
            if task.mode == "line":
                h, w = task.image.shape[:2]
                quads = np.array([[[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]], np.float32)
                task_crops = [task.image]
            else:
                quads = self.detect(task.image)
                task_crops = [crop_quad(task.image, quad) for quad in quads]
            results[index].detection_ms = (time.perf_counter() - start) * 1000
            crops.extend(task_crops)
            owners.extend((index, np.round(quad).astype(int).tolist()) for quad in quads)
        start = time.perf_counter()
        hints = [self.hint(task.lang) for task in tasks]
        texts = recognize_lines(
            self.model,
            crops,
            max_width=self.settings.rec_max_width,
            budget=self.settings.rec_chunk_width,
            pad_slack=self.settings.rec_pad_slack,
            hints=[hints[index] for index, _ in owners],
            tail_pad=self.tail_pad,
            width_scale=self.width_scale,
        ) if crops else []
        recognition_ms = (time.perf_counter() - start) * 1000
        for (index, box), (text, confidence) in zip(owners, texts):
            keep = tasks[index].mode == "line" or (text and confidence >= self.settings.min_line_confidence)
            if keep:
                results[index].lines.append(Line(text, round(confidence, 4), tuple(map(tuple, box))))
        for task, result in zip(tasks, results):
            result.recognition_ms = recognition_ms
            if task.mode == "page" and len(result.lines) > 1:  # columns, titles, tables as a reader reads them
                result.lines = ordered_lines(result.lines)[0]
        return results
