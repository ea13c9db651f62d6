"""Canary releases: which model version a job that names none gets, changed at run time.

The split lives in Redis (``batchocr:canary``: version -> weight), so every API process sees a
change at once, without a restart. No split = every such job gets ``OCR_DEFAULT_MODEL``.
``batchocr-models canary NEW 10`` sends 10 % to NEW and 90 % to the default;
``batchocr-models rollback`` removes the split in one step. Jobs and results always record the
version that was used.
"""

from __future__ import annotations

import random

from redis import Redis

from typing import Any

from shared import models
from shared.errors import BadOptionError
from shared.keys import CANARY
from shared.settings import Settings

def split(connection: Redis) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in connection.hgetall(CANARY).items()}


def choose(connection: Redis, settings: Settings, rng: random.Random | None = None) -> str:
    """A version for a job that names none: by the split's weights, else the default."""
    weights = {name: w for name, w in split(connection).items() if w > 0}
    if not weights:
        return settings.default_model
    names = sorted(weights)
    return (rng or random).choices(names, weights=[weights[n] for n in names])[0]


def set_canary(connection: Redis, settings: Settings, version: str, percent: float) -> dict[str, float]:
    """Send ``percent`` of unversioned jobs to ``version``, the rest to the default."""
    models.version(version, settings.model_dir)
    if not 0 < percent <= 100:
        raise BadOptionError("the canary share must be within (0, 100] percent")
    weights = {settings.default_model: 100.0 - percent, version: percent}
    with connection.pipeline() as pipe:
        pipe.delete(CANARY)
        pipe.hset(CANARY, mapping={k: v for k, v in weights.items() if v > 0})
        pipe.execute()
    return weights


def rollback(connection: Redis) -> None:
    connection.delete(CANARY)


def describe(connection: Redis, settings: Settings) -> dict[str, Any]:
    """The public view of the model versions: each version, the default and the canary split."""
    versions = models.load_versions(settings.model_dir)
    return {
        "default": settings.default_model,
        "canary": split(connection),
        "versions": [{"name": spec.name, "status": spec.status, "installed": spec.installed(),
                      "description": spec.description, "rec_height": spec.rec_height}
                     for spec in sorted(versions.values(), key=lambda s: s.name)],
    }
