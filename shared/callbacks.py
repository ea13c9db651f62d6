"""Completion callbacks: a job's ``callback_url`` is POSTed its terminal status, signed.

Contract (the receiver's side):

- Body (JSON): ``{"delivery_id", "job_id", "status", "error", "links": {"self"}}``; ``status``
  is finished, failed or canceled; the result itself is read at ``links.self`` with the key.
- ``X-BatchOCR-Delivery``: the idempotency id (``<job id>.<status>``), the same on every try:
  delivery is at least once, so a receiver drops an id it has seen.
- ``X-BatchOCR-Signature: t=<unix seconds>,v1=<hex>``: HMAC-SHA256 over ``"<t>." + body`` with
  the key's callback secret (``GET /v1/callbacks/secret``; derived from ``OCR_CALLBACK_SECRET``
  and the key id, so nothing per key is stored). ``verify`` checks it and refuses a timestamp
  older than 5 minutes (a replay). ``X-BatchOCR-Attempt``: 1, 2, ...

Where it may go (``check_url``, again at each try on the resolved addresses): https to a public
address, or any scheme and address of a host in ``OCR_CALLBACK_HOSTS``. Loopback, private,
link-local and other non-global addresses, ``localhost`` and URLs carrying credentials are
refused. Delivery itself (``worker.callback_delivery``) follows no redirects, waits at most
``OCR_CALLBACK_TIMEOUT_S`` per try and reads at most 64 KB of the answer.

Redis (``shared.keys``): a job with a callback is *watched* from its submission: a hash of what
to deliver, and a sorted set of when to look at it next. Whatever ends the job (a worker, a
cancel, the reaper's poison verdict, rq itself), a deliverer that looks finds its terminal
status; ``due_now`` makes it look at once when a batch ends. A failed try is retried with
capped exponential backoff, then the delivery becomes a dead letter the key can list.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import time
from urllib.parse import urlsplit

from redis import Redis

from shared import keys
from shared.errors import BadOptionError
from shared.settings import Settings

MAX_URL_LENGTH = 2048
REPLAY_WINDOW_S = 300
DEAD_LETTERS_KEPT = 1000


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """``OCR_CALLBACK_HOSTS``: lower-cased ``host`` or ``host:port`` entries."""
    return frozenset(h.strip().lower() for h in settings.callback_hosts.split(",") if h.strip())


def is_allowed(settings: Settings, host: str, port: int) -> bool:
    host = host.lower()
    allowed = allowed_hosts(settings)
    return host in allowed or f"{host}:{port}" in allowed or f"[{host}]:{port}" in allowed


def public_address(address: str) -> bool:
    """A global unicast address (not loopback, private, link-local, shared, reserved or multicast)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(settings: Settings, url: str) -> str:
    """``url`` if a callback may go there; BadOptionError with the reason otherwise."""
    if not settings.callback_secret:
        raise BadOptionError("callbacks are not enabled on this deployment (OCR_CALLBACK_SECRET is not set)")
    if len(url) > MAX_URL_LENGTH:
        raise BadOptionError(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BadOptionError(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise BadOptionError("callback_url must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise BadOptionError("callback_url must not carry credentials; receivers check the signature instead")
    try:
        host.encode("idna")  # what the resolver is given: labels of 1 to 63 characters, no stray code points
    except UnicodeError:
        raise BadOptionError("callback_url's host is not a valid host name") from None
    if is_allowed(settings, host, port):
        return url
    if parts.scheme != "https":
        raise BadOptionError("callback_url must use https (http only to a host in OCR_CALLBACK_HOSTS)")
    if host == "localhost" or host.endswith(".localhost") or _non_global_literal(host):
        raise BadOptionError("callback_url points at a loopback, private or link-local address; "
                             "only hosts in OCR_CALLBACK_HOSTS may be")
    return url


def _non_global_literal(host: str) -> bool:
    try:
        return not public_address(host)
    except ValueError:  # a name: its addresses are checked at each try
        return False


def key_secret(settings: Settings, owner: str) -> str:
    """The signing secret of the key with id ``owner`` ('' for an open API)."""
    return hmac.new(settings.callback_secret.encode(), f"batchocr-callback:{owner}".encode(), hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-BatchOCR-Signature`` header's value."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within the replay window (receivers)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > REPLAY_WINDOW_S:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), f"t={timestamp},v1={fields.get('v1', '')}")


def body(job_id: str, status: str, error: dict | None) -> bytes:
    document = {"delivery_id": delivery_id(job_id, status), "job_id": job_id, "status": status,
                "error": error, "links": {"self": f"/v1/jobs/{job_id}"}}
    return json.dumps(document, separators=(",", ":")).encode()


def delivery_id(job_id: str, status: str) -> str:
    return f"{job_id}.{status}"


def watch(connection: Redis, job_id: str, url: str, owner: str, *, first_look_s: float = 5.0) -> None:
    """From its submission on, ``job_id``'s end is delivered to ``url``."""
    with connection.pipeline() as pipe:
        pipe.hset(keys.callback_key(job_id), mapping={"url": url, "owner": owner, "since": time.time(),
                                                      "tries": 0, "looks": 0})
        pipe.zadd(keys.CALLBACKS_DUE, {job_id: time.time() + first_look_s})
        pipe.execute()


def due_now(pipeline, job_ids: list[str]) -> None:
    """These jobs ended: their deliverers look now (only jobs watched: ZADD XX adds none)."""
    if job_ids:
        pipeline.zadd(keys.CALLBACKS_DUE, dict.fromkeys(job_ids, time.time()), xx=True)


def dead_letter(connection: Redis, owner: str, record: dict) -> None:
    """A delivery that ran out of tries, kept (newest first, at most DEAD_LETTERS_KEPT) for its key."""
    key = keys.callbacks_dead_key(owner)
    with connection.pipeline() as pipe:
        pipe.lpush(key, json.dumps(record))
        pipe.ltrim(key, 0, DEAD_LETTERS_KEPT - 1)
        pipe.execute()


def dead_letters(connection: Redis, owner: str, limit: int) -> list[dict]:
    """The key's newest ``limit`` dead letters."""
    return [json.loads(raw) for raw in connection.lrange(keys.callbacks_dead_key(owner), 0, limit - 1)]
