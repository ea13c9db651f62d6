"""How every process reaches Redis: ``OCR_REDIS_URL``, or the master that Redis Sentinel names.

With ``OCR_REDIS_SENTINELS`` set, the API, workers, producer and health checks ask the
sentinels for the current master of ``OCR_REDIS_SENTINEL_MASTER`` and follow it across a
failover: a command that fails on the old master raises a ConnectionError (an outage the
worker and producer already wait out), and the next one reconnects to whichever server the
sentinels then name. The master's password and database come from ``OCR_REDIS_URL``; the
sentinels' own password from ``OCR_REDIS_SENTINEL_PASSWORD``. Redis Cluster is not supported:
rq's multi-key commands would cross slots.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from redis import Redis
from redis.connection import parse_url
from redis.sentinel import Sentinel

from shared.errors import ConfigError
from shared.settings import Settings


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    """The sentinels of ``OCR_REDIS_SENTINELS`` ("host:port,..."; [v6]:port for IPv6)."""
    found = []
    for item in (part.strip() for part in settings.redis_sentinels.split(",")):
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"OCR_REDIS_SENTINELS: {item!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    return found


def display_url(url: str) -> str:
    """``url`` fit to print or log: a password in it (``redis://:pw@host``, or redis-py's
    ``?password=pw``) is shown as ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            user = f"{parts.username}:***@" if parts.username else ":***@"
            parts = parts._replace(netloc=user + parts.netloc.rpartition("@")[2])
        query = [(name, "***" if name.lower() == "password" else value)
                 for name, value in parse_qsl(parts.query, keep_blank_values=True)]
        return urlunsplit(parts._replace(query=urlencode(query, safe="*")))
    except ValueError:
        return "<a Redis URL that does not parse>"


def connect(settings: Settings, **options: Any) -> Redis:
    """A client for batchocr's Redis; ``options`` are redis-py connection options (timeouts)."""
    sentinels = sentinel_addresses(settings)
    if not sentinels:
        return Redis.from_url(settings.redis_url, **options)
    url = parse_url(settings.redis_url)
    sentinel_options = {k: v for k, v in options.items() if k.startswith("socket_")}
    if settings.redis_sentinel_password:
        sentinel_options["password"] = settings.redis_sentinel_password
    sentinel = Sentinel(sentinels, sentinel_kwargs=sentinel_options, **sentinel_options)
    return sentinel.master_for(settings.redis_sentinel_master, db=url.get("db", 0), password=url.get("password"),
                               username=url.get("username"), **options)


def limiter_storage_uri(settings: Settings) -> str:
    """The rate limiter's storage (the ``limits`` library's URI) on the same Redis."""
    sentinels = sentinel_addresses(settings)
    if not sentinels:
        return settings.redis_url
    url = parse_url(settings.redis_url)
    auth = f":{quote(url['password'], safe='')}@" if url.get("password") else ""
    hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in sentinels)
    return f"redis+sentinel://{auth}{hosts}/{settings.redis_sentinel_master}"
