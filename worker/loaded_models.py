"""The model versions a worker has loaded: loaded on first use, at most
``OCR_MAX_LOADED_MODELS`` kept (least recently used goes first), one pipeline per version."""

from __future__ import annotations

import logging
from collections import OrderedDict

from shared.settings import Settings
from worker.pipeline import OcrPipeline

logger = logging.getLogger(__name__)


class Pipelines:
    """``get(version)`` -> a ready OcrPipeline; ModelError for a version that cannot load."""

    def __init__(self, settings: Settings, preloaded: dict[str, OcrPipeline] | None = None) -> None:
        self.settings = settings
        self._loaded: OrderedDict[str, OcrPipeline] = OrderedDict(preloaded or {})
        self.limit = max(settings.max_loaded_models, len(self._loaded))

    def get(self, version: str) -> OcrPipeline:
        if version in self._loaded:
            self._loaded.move_to_end(version)
            return self._loaded[version]
        pipeline = OcrPipeline.load(version, self.settings)
        self._loaded[version] = pipeline
        while len(self._loaded) > self.limit:
            evicted, _ = self._loaded.popitem(last=False)
            logger.info("unloaded model %s (OCR_MAX_LOADED_MODELS=%d)", evicted, self.limit)
        return pipeline

    def loaded(self) -> list[str]:
        return list(self._loaded)
