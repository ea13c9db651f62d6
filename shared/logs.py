"""Logging set-up for entry points (modules only call ``logging.getLogger(__name__)``).

``text``: one human-readable line per record. ``json``: one JSON object per line with the
standard fields plus whatever a call passes in ``extra`` (``job_id``, ``batch_id``, ``job_ids``),
for log pipelines that index by job.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

TEXT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def configure(level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(name)s %(levelname)s %(message)s",
                                           rename_fields={"levelname": "level", "asctime": "time"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
