"""The model versions a worker has loaded: loaded on first use, at most
``OCR_MAX_LOADED_MODELS`` kept (least recently used goes first), one pipeline per version."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

from shared.settings import Settings
from worker.pipeline import OcrPipeline
from worker.warm_up import warm_up

logger = logging.getLogger(__name__)


class Pipelines:
    """``get(version)`` -> a ready OcrPipeline, warmed up (``worker.warm_up``); ModelError for a
    version that cannot load."""

    def __init__(self, settings: Settings, preloaded: dict[str, OcrPipeline] | None = None,
                 on_load: Callable[[OcrPipeline], None] | None = None,
                 on_unload: Callable[[OcrPipeline], None] | None = None) -> None:
        self.settings = settings
        self._loaded: OrderedDict[str, OcrPipeline] = OrderedDict(preloaded or {})
        self.limit = max(settings.max_loaded_models, len(self._loaded))
        self.on_load, self.on_unload = on_load, on_unload  # told of every pipeline held, and let go (metrics)
        for pipeline in self._loaded.values():
            if on_load is not None:
                on_load(pipeline)

    def get(self, version: str) -> OcrPipeline:
        if version in self._loaded:
            self._loaded.move_to_end(version)
            return self._loaded[version]
        pipeline = OcrPipeline.load(version, self.settings)
        warm_up(pipeline, self.settings.warm_up_width)
        self._loaded[version] = pipeline
        if self.on_load is not None:
            self.on_load(pipeline)
        while len(self._loaded) > self.limit:
            evicted, dropped = self._loaded.popitem(last=False)
            logger.info("unloaded model %s (OCR_MAX_LOADED_MODELS=%d)", evicted, self.limit)
            if self.on_unload is not None:
                self.on_unload(dropped)
        return pipeline

    def loaded(self) -> list[str]:
        return list(self._loaded)
