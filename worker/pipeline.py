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

from shared.document import Block, Line, Word, joined_text
from shared.payload import resolve_lang
from shared.settings import Settings
from worker.ctc import Hint, Reading
from worker.deskew import level, needs_leveling, to_page_frame
from worker.detect import DetParams, crop_quad, db_boxes, det_preprocess, read_along_height, reading_order
from worker.lexicon import english
from worker.line_geometry import skew_angle
from worker.backend_choice import choose
from worker.engine import EngineOptions
from worker.model_loading import OcrModel, load_model, model_files
from worker.orientation import LineClassifier, page_vote, rotation_of, to_sent_frame, turn_upright, voters
from worker.orientation import Params as OrientationParams
from worker.reading_order import ordered_lines
from worker.recognize import recognize_lines
from worker.words import line_words, mirrored

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

    ``lines``, ``blocks``: the result contract's (``shared.document``); ``blocks`` index
    ``lines`` and are empty for line jobs; ``skew``: the page's text angle in degrees;
    ``rotation``: clockwise degrees the page was found turned by (``worker.orientation``);
    ``inference``: the backend and precision that read it (``worker.backend_choice``).
    """

    lines: list[Line] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    skew: float = 0.0
    rotation: int = 0
    detection_ms: float = 0.0
    recognition_ms: float = 0.0
    inference: str = ""

    @property
    def text(self) -> str:
        return joined_text(self.lines, self.blocks)

    def order(self) -> None:
        """Put a page's lines in reading order and group them into blocks
        (``worker.reading_order``: columns, titles, tables as a reader reads them)."""
        if not self.lines:
            return
        lines, layout = ordered_lines(self.lines)
        position = {index: rank for rank, index in enumerate(layout.order)}
        self.lines = lines
        self.blocks = [Block(block.kind, tuple((round(x), round(y)) for x, y in block.box),
                             tuple(position[i] for i in block.lines)) for block in layout.blocks]
        self.skew = layout.skew

    def turn_back(self, rotation: int, upright_shape: tuple[int, ...]) -> None:
        """Boxes found on the page turned upright, into the pixels of the image as sent."""
        self.rotation = rotation
        if not rotation:
            return

        def sent(box) -> tuple:
            return tuple((round(x), round(y)) for x, y in to_sent_frame(np.asarray(box), rotation, upright_shape))

        self.lines = [Line(line.text, line.confidence, sent(line.box),
                           tuple(Word(w.text, w.confidence, sent(w.box)) for w in line.words))
                      for line in self.lines]
        self.blocks = [Block(block.kind, sent(block.box), block.lines) for block in self.blocks]


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
        # Pages at any right angle, upside-down lines (worker.orientation); off: read as given.
        self.classifier = LineClassifier(model.cls) if settings.orientation and model.cls is not None else None
        spec = model.spec
        self.tail_pad = settings.rec_tail_pad if spec.rec_tail_pad is None else spec.rec_tail_pad
        self.width_scale = settings.rec_width_scale or spec.rec_width_scale

    @classmethod
    def load(cls, version: str, settings: Settings) -> OcrPipeline:
        """Build model ``version``'s engines on the backend the settings choose for it
        (``worker.backend_choice``), with their threads, arena and model dir."""
        choice = choose(settings.backend, settings.precision, version, model_files(version, settings.model_dir))
        return cls(load_model(version, choice, EngineOptions.from_settings(settings), settings.model_dir), settings)

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

    def page_lines(self, image: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], int, tuple[int, ...]]:
        """A page's line boxes (K x 4 x 2, on the page turned upright) and crops, the clockwise
        degrees it was found turned by, and the upright page's shape (``worker.orientation``)."""
        quads = self.detect(image)
        crops = [crop_quad(image, quad) for quad in quads]
        if self.classifier is None or not crops:
            return quads, crops, 0, image.shape
        sample = voters(quads)
        sideways, share = page_vote(quads[sample], self.classifier.upside_down([crops[i] for i in sample]))
        upside_down = share > OrientationParams().doubt_share and self._surer_turned([crops[i] for i in sample])
        rotation = rotation_of(sideways, upside_down)
        if rotation:
            image = turn_upright(image, rotation)
            quads = self.detect(image)
            crops = [crop_quad(image, quad) for quad in quads]
        quads, crops = self._level(image, quads, crops)
        return quads, crops, rotation, image.shape

    def _level(self, image: np.ndarray, quads: np.ndarray, crops: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """A skewed page's lines found again on the page turned level (``worker.deskew``):
        boxes in ``image``'s pixels, crops cut from the level page; as given otherwise."""
        angle = skew_angle(quads) if len(quads) else 0.0
        if not self.settings.deskew or not needs_leveling(angle):
            return quads, crops
        leveled, matrix = level(image, angle, quads)
        found = self.detect(leveled)
        return to_page_frame(found, matrix), [crop_quad(leveled, quad) for quad in found]

    def _surer_turned(self, crops: list[np.ndarray]) -> bool:
        """Whether the recogniser reads these line crops (a page's voters) more surely turned
        180 degrees than as they are (confidence weighted by crop width)."""
        turned = [np.ascontiguousarray(crop[::-1, ::-1]) for crop in crops]
        readings = self._recognize(crops + turned, [Hint()] * (2 * len(crops)))
        weights = np.asarray([crop.shape[1] for crop in crops], np.float64)
        confidence = np.asarray([reading.confidence for reading in readings]).reshape(2, -1) @ weights
        return bool(confidence[1] > confidence[0])

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
        results = [PageResult(inference=self.model.choice.label) for _ in tasks]
        rotations, shapes = [0] * len(tasks), [task.image.shape for task in tasks]
        crops: list[np.ndarray] = []
        owners: list[tuple[int, np.ndarray, bool]] = []  # per crop: its task, quad, turned a quarter
        for index, task in enumerate(tasks):
            start = time.perf_counter()
            if task.mode == "line":
                h, w = task.image.shape[:2]
                quads = np.array([[[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]]], np.float32)
                task_crops = [task.image]
            else:
                quads, task_crops, rotations[index], shapes[index] = self.page_lines(task.image)
            results[index].detection_ms = (time.perf_counter() - start) * 1000
            crops.extend(task_crops)
            owners.extend((index, quad, task.mode == "page" and read_along_height(quad)) for quad in quads)
        start = time.perf_counter()
        task_hints = [self.hint(task.lang) for task in tasks]
        hints = [task_hints[index] for index, _, _ in owners]
        texts = self._recognize(crops, hints)
        pages = [i for i, (index, _, _) in enumerate(owners) if tasks[index].mode == "page"]
        self._reread_upside_down(crops, hints, texts, pages)
        recognition_ms = (time.perf_counter() - start) * 1000
        for (index, quad, along_height), (text, confidence, spans) in zip(owners, texts):
            keep = tasks[index].mode == "line" or (text and confidence >= self.settings.min_line_confidence)
            if keep:
                box = tuple(map(tuple, np.round(quad).astype(int).tolist()))
                words = line_words(text, spans, quad, along_height)
                results[index].lines.append(Line(text, round(confidence, 4), box, words))
        for task, result, rotation, shape in zip(tasks, results, rotations, shapes):
            result.recognition_ms = recognition_ms
            if task.mode == "page":
                result.order()
                result.turn_back(rotation, shape)
        return results

    def _recognize(self, crops: list[np.ndarray], hints: list[Hint]) -> list[Reading]:
        """The reading of every crop, all recognised together (``worker.recognize``)."""
        if not crops:
            return []
        return recognize_lines(
            self.model,
            crops,
            max_width=self.settings.rec_max_width,
            budget=self.settings.rec_chunk_width,
            bucket=self.settings.rec_width_bucket,
            hints=hints,
            tail_pad=self.tail_pad,
            width_scale=self.width_scale,
        )

    def _reread_upside_down(self, crops: list[np.ndarray], hints: list[Hint], texts: list[Reading],
                            candidates: list[int]) -> None:
        """Page lines read unsure that the classifier thinks upside down are read turned 180
        degrees too; ``texts`` keeps, per line, the reading the recogniser is surer of."""
        if self.classifier is None:
            return
        params = OrientationParams()
        unsure = [i for i in candidates if texts[i][1] < params.recheck_below]
        if not unsure:
            return
        flipped = self.classifier.upside_down([crops[i] for i in unsure])
        turned = [i for i, p in zip(unsure, flipped) if p > params.line_flip]
        readings = self._recognize([np.ascontiguousarray(crops[i][::-1, ::-1]) for i in turned],
                                   [hints[i] for i in turned])
        for i, reading in zip(turned, readings):
            if reading.confidence > texts[i].confidence:
                texts[i] = Reading(reading.text, reading.confidence, mirrored(reading.words))
