"""Loading a named model's ONNX sessions and vocabulary, once per worker process."""

from __future__ import annotations

import importlib.resources
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shared.errors import ModelError
from shared.models import MODELS, ModelSpec
from worker.charsets import allowed_classes
from worker.engine import Engine, build_session

logger = logging.getLogger(__name__)


@dataclass
class OcrModel:
    """A loaded model: detector and recogniser engines plus the CTC vocabulary.

    ``vocab[0]`` is the CTC blank and the last entry is a space, as in PP-OCR.
    """

    spec: ModelSpec
    det: Engine
    rec: Engine
    vocab: list[str]
    _charsets: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)

    def charset_classes(self, lang: str) -> np.ndarray | None:
        """Class ids a charset hint allows ('' = all: None), computed once per model and hint."""
        if lang not in self._charsets:
            self._charsets[lang] = allowed_classes(self.vocab, lang)
        return self._charsets[lang]


def model_path(spec: ModelSpec, relative: str) -> Path:
    path = Path(str(importlib.resources.files(spec.package) / relative))
    if not path.is_file():
        raise ModelError(f"model file {relative} not found in package {spec.package}")
    return path


def load_model(name: str, threads: int, mem_arena: bool = True) -> OcrModel:
    """Build the sessions for model ``name``; fails loudly if the vocabulary does not fit.

    Raises:
        ModelError: unknown name, missing file, or class count != vocabulary + blank + space.
    """
    spec = MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    det = Engine(build_session(model_path(spec, spec.det_file), threads, mem_arena))
    rec = Engine(build_session(model_path(spec, spec.rec_file), threads, mem_arena))
    meta = rec.session.get_modelmeta().custom_metadata_map
    if "character" not in meta:
        raise ModelError(f"{spec.rec_file} carries no 'character' vocabulary in its metadata")
    vocab = ["<blank>", *meta["character"].splitlines(), " "]
    classes = rec.session.get_outputs()[0].shape[-1]
    if isinstance(classes, int) and classes != len(vocab):
        raise ModelError(f"{spec.rec_file} has {classes} classes but its vocabulary gives {len(vocab)}")
    logger.info("model %s ready: %d classes", name, len(vocab))
    return OcrModel(spec=spec, det=det, rec=rec, vocab=vocab)
