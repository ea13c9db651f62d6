"""API keys: who may submit jobs, and whose jobs are whose.

Keys come from ``OCR_API_KEYS`` (comma-separated) and/or ``OCR_API_KEYS_FILE`` (one per line,
``#`` comments; e.g. a Docker secret). A key is never stored or logged: jobs record the key's
*id*, the first 16 hex digits of its SHA-256, which is what ownership checks and rate limits
use. Presented keys are compared with ``hmac.compare_digest`` against every configured key, so
timing tells nothing about how close a guess was. With no keys configured the API is open
(development), and every job belongs to the empty owner.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from shared.errors import ConfigError
from shared.settings import Settings

MIN_KEY_LENGTH = 16


def key_id(key: str) -> str:
    """The public id of a key: safe to store with jobs, to log and to use as a rate-limit key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def load_keys(settings: Settings) -> list[str]:
    """Every configured key; ConfigError for an unreadable file or a key too short to be secret."""
    keys = [k.strip() for k in settings.api_keys.split(",") if k.strip()]
    if settings.api_keys_file:
        try:
            text = Path(settings.api_keys_file).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"OCR_API_KEYS_FILE cannot be read: {exc.strerror}") from None
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    short = [key_id(k) for k in keys if len(k) < MIN_KEY_LENGTH]
    if short:
        raise ConfigError(f"API keys must be at least {MIN_KEY_LENGTH} characters (key ids {', '.join(short)})")
    return keys


def identify(presented: str | None, keys: list[str]) -> str | None:
    """The id of the configured key equal to ``presented``, or None. Constant time per key."""
    if not presented:
        return None
    given = presented.encode("utf-8")
    found = None
    for key in keys:
        if hmac.compare_digest(given, key.encode("utf-8")):
            found = key_id(key)
    return found
