"""Ids a client may choose (job ids, collection ids): UUIDs in canonical form only, so an id
can never carry a ':' into a Redis key or be misread by rq."""

from __future__ import annotations

import uuid

from shared.errors import BadOptionError


def is_canonical_uuid(value: object) -> bool:
    try:
        return str(uuid.UUID(value)) == value  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return False


def check_uuid(value: object, what: str) -> str:
    """``value`` if it is a canonical UUID; BadOptionError naming the field ``what`` otherwise."""
    if not is_canonical_uuid(value):
        raise BadOptionError(f"{what} must be a UUID in canonical form; got {str(value)[:64]!r}")
    return value  # type: ignore[return-value]
