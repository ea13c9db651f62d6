"""Loading a named model's ONNX sessions and vocabulary, once per worker process."""

from __future__ import annotations

import importlib.resources
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.errors import BadOptionError, ModelError
from shared.models import FileRef, ModelSpec, version
from worker.charset_masks import allowed_classes
from worker.backend_choice import Choice
from worker.engine import Engine, EngineOptions, OpenVinoEngine, build_engine

# PP-OCR's 0/180 text-line classifier, shipped in the rapidocr wheel (worker/orientation.py).
CLS_FILE = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"

logger = logging.getLogger(__name__)


@dataclass
class OcrModel:
    """A loaded model: detector and recogniser engines plus the CTC vocabulary, and the 0/180
    line classifier every version shares (``worker.orientation``).

    ``vocab[0]`` is the CTC blank and the last entry is a space, as in PP-OCR.
    """

    spec: ModelSpec
    det: Engine | OpenVinoEngine
    rec: Engine | OpenVinoEngine
    vocab: list[str]
    cls: Engine | OpenVinoEngine | None = None
    choice: Choice = Choice("onnxruntime", "fp32")
    _charsets: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)

    def charset_classes(self, lang: str) -> np.ndarray | None:
        """Class ids a charset hint allows ('' = all: None), computed once per model and hint."""
        if lang not in self._charsets:
            self._charsets[lang] = allowed_classes(self.vocab, lang)
        return self._charsets[lang]


def _file(spec: ModelSpec, ref: FileRef) -> Path:
    path = spec.path(ref)
    if path is None:
        raise ModelError(f"model {spec.name}: package {ref.package!r} is not installed")
    if not path.is_file():
        raise ModelError(f"model {spec.name}: file {path} not found")
    return path


def _vocabulary(spec: ModelSpec, rec: Engine | OpenVinoEngine, choice: Choice) -> list[str]:
    """blank + symbols + space, from a dictionary file or an ONNX model's ``character`` metadata."""
    if spec.vocab is not None:
        symbols = _file(spec, spec.vocab).read_text("utf-8").splitlines()
    else:
        source = rec if spec.vocab_from_metadata_of is None else build_engine(
            _file(spec, spec.vocab_from_metadata_of), Choice(choice.backend, "fp32"), EngineOptions(1, False))
        character = source.metadata("character")
        if character is None:
            raise ModelError(f"model {spec.name}: no 'character' vocabulary in the ONNX metadata")
        symbols = character.splitlines()
    return ["<blank>", *symbols, " "]


def model_files(name: str, model_dir: str = "") -> list[Path]:
    """The detector and recogniser files of version ``name`` that exist (what a backend gate's
    fingerprint covers: ``worker.backend_choice``); [] for an unknown version."""
    try:
        spec = version(name, model_dir, installed=False)
    except BadOptionError:
        return []
    paths = [spec.path(spec.det), spec.path(spec.rec)]
    return [path for path in paths if path is not None and path.is_file()]


def load_model(name: str, choice: Choice, options: EngineOptions, model_dir: str = "") -> OcrModel:
    """Build the engines for version ``name`` on ``choice``'s backend and precision (detector
    and recogniser; the small line classifier on the same backend in full precision, so a
    worker loads one runtime); fails loudly if the vocabulary does not fit.

    Raises:
        ModelError: unknown version, missing package or file, or class count != vocabulary
        + blank + space.
    """
    try:
        spec = version(name, model_dir, installed=False)
    except BadOptionError as exc:
        raise ModelError(exc.message) from None
    det = build_engine(_file(spec, spec.det), choice, options)
    # The recogniser runs a page's (or a batch's) chunks of lines two at once, in two streams
    # that share the threads (measured at 2 threads: 1.65x one stream's lines/s; not beyond).
    rec = build_engine(_file(spec, spec.rec), choice, options, streams=min(2, options.threads))
    choice = Choice(choice.backend, rec.precision, choice.reason)  # what the backend actually runs
    vocab = _vocabulary(spec, rec, choice)
    classes = rec.classes
    if classes is not None and classes != len(vocab):
        raise ModelError(f"model {spec.name}: {classes} output classes but the vocabulary gives {len(vocab)}")
    cls = build_engine(Path(str(importlib.resources.files("rapidocr") / "models" / CLS_FILE)),
                       Choice(choice.backend, "fp32"), options, spin=False)
    logger.info("model %s ready: %d classes, on %s (%s)", name, len(vocab), choice.label, choice.reason)
    return OcrModel(spec=spec, det=det, rec=rec, vocab=vocab, cls=cls, choice=choice)
