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
from worker.engine import Engine, OpenVinoEngine, build_engine, build_session

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
    cls: Engine | None = None
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


def _vocabulary(spec: ModelSpec, rec: Engine | OpenVinoEngine) -> list[str]:
    """blank + symbols + space, from a dictionary file or an ONNX model's ``character`` metadata."""
    if spec.vocab is not None:
        symbols = _file(spec, spec.vocab).read_text("utf-8").splitlines()
    else:
        source = rec if spec.vocab_from_metadata_of is None else Engine(build_session(
            _file(spec, spec.vocab_from_metadata_of), 1, False))
        character = source.metadata("character")
        if character is None:
            raise ModelError(f"model {spec.name}: no 'character' vocabulary in the ONNX metadata")
        symbols = character.splitlines()
    return ["<blank>", *symbols, " "]


def load_model(name: str, threads: int, mem_arena: bool = True, model_dir: str = "", backend: str = "onnxruntime",
               precision: str = "fp32") -> OcrModel:
    """Build the sessions for version ``name`` on ``backend`` at ``precision`` (detector and
    recogniser; the small line classifier always on ONNX Runtime); fails loudly if the
    vocabulary does not fit.

    Raises:
        ModelError: unknown version, missing package or file, or class count != vocabulary
        + blank + space.
    """
    try:
        spec = version(name, model_dir, installed=False)
    except BadOptionError as exc:
        raise ModelError(exc.message) from None
    det = build_engine(_file(spec, spec.det), threads, backend, precision, mem_arena)
    rec = build_engine(_file(spec, spec.rec), threads, backend, precision, mem_arena)
    vocab = _vocabulary(spec, rec)
    classes = rec.classes
    if classes is not None and classes != len(vocab):
        raise ModelError(f"model {spec.name}: {classes} output classes but the vocabulary gives {len(vocab)}")
    cls = Engine(build_session(Path(str(importlib.resources.files("rapidocr") / "models" / CLS_FILE)),
                               threads, mem_arena, spin=False))
    logger.info("model %s ready: %d classes", name, len(vocab))
    return OcrModel(spec=spec, det=det, rec=rec, vocab=vocab, cls=cls)
