"""What clients read of a collection (``shared.job_collections``): its public view, pages of its
jobs, an API key's collections, the reply to a cancel and the body of its completion callback."""

from __future__ import annotations

import json
import time
from typing import Any

from redis import Redis

from shared import keys, query_values
from shared.errors import CollectionNotFoundError
from shared.job_collections import ENDED, STATUSES, WATCH_PREFIX, fetch, job_defaults

MAX_PAGE = 1000
# Past this a listing is surely a mistake (a collection holds far fewer jobs).
MAX_OFFSET = 10**9


def describe(collection: dict[str, str]) -> dict[str, Any]:
    """The public view of a collection's hash: counts by status, progress (ended / total), times."""
    counts = {status: max(0, int(collection.get(f"n_{status}", 0))) for status in STATUSES}
    total = max(0, int(collection.get("total", 0)))
    ended = sum(counts[s] for s in ENDED)
    if collection.get("canceled_at"):
        status = "canceled"
    elif total == 0:
        status = "empty"
    else:
        status = "active" if counts["queued"] + counts["started"] else "finished"
    return {
        "id": collection["id"], "name": collection.get("name", ""), "status": status,
        "options": job_defaults(collection), "callback_url": collection.get("callback_url") or None,
        "total": total, "counts": counts, "progress": round(ended / total, 4) if total else 0.0,
        **{f"{when}_at": _iso(collection.get(f"{when}_at")) for when in ("created", "started", "finished", "canceled")},
        "links": {"self": f"/v1/collections/{collection['id']}", "jobs": f"/v1/collections/{collection['id']}/jobs"},
    }


def _iso(value: str | None) -> str | None:
    if not value:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(float(value))) + f".{int(float(value) % 1 * 1000):03d}Z"


def cancel_reply(connection: Redis, collection: dict[str, str], first: bool) -> dict[str, Any]:
    """The answer to a cancel (``job_collections.cancel`` returned ``first``), with what follows."""
    view = describe(fetch(connection, collection["id"], collection["owner"]))
    queued, started = view["counts"]["queued"], view["counts"]["started"]
    message = (f"{queued} queued job(s) are cancelled as workers reach them (no OCR is spent on them); "
               f"{started} running job(s) finish") if first else "the collection was already cancelled"
    return {"id": collection["id"], "canceled": first, "message": message, "collection": view}


def jobs_page(connection: Redis, collection: dict[str, str], offset: int, limit: int) -> dict[str, Any]:
    """Its jobs in the order they joined, ``limit`` from ``offset``, with their statuses."""
    order = keys.collection_order_key(collection["id"])
    job_ids = [raw.decode() for raw in connection.zrange(order, offset, offset + limit - 1)]
    statuses = connection.hmget(keys.collection_jobs_key(collection["id"]), job_ids) if job_ids else []
    jobs = [{"id": job_id, "status": (status or b"unknown").decode(), "links": {"self": f"/v1/jobs/{job_id}"}}
            for job_id, status in zip(job_ids, statuses)]
    return {"jobs": jobs, "offset": offset, "next_offset": _next(connection.zcard(order), offset, len(job_ids))}


def owned(connection: Redis, owner: str, offset: int, limit: int) -> dict[str, Any]:
    """The key's collections, newest first (expired ones dropped from its index)."""
    index = keys.owner_collections_key(owner)
    entries = connection.zrevrange(index, offset, offset + limit - 1)
    views = []
    for raw in entries:
        try:
            views.append(describe(fetch(connection, raw.decode(), owner)))
        except CollectionNotFoundError:
            connection.zrem(index, raw)
    return {"collections": views, "offset": offset,
            "next_offset": _next(connection.zcard(index), offset, len(entries))}


def _next(size: int, offset: int, count: int) -> int | None:
    return offset + count if count and offset + count < size else None


def delivery(connection: Redis, watched_id: str) -> tuple[str, bytes] | None:
    """The callback of a collection that has ended (its delivery id and body), or None if it is
    gone or open again (jobs joined since: its next end is delivered then)."""
    raw = connection.hgetall(keys.collection_key(watched_id.removeprefix(WATCH_PREFIX)))
    found = {k.decode(): v.decode() for k, v in raw.items()}
    if not found.get("created_at"):
        return None
    view = describe(found)
    if view["counts"]["queued"] + view["counts"]["started"]:
        return None
    delivery_id = f"{view['id']}.{view['status']}.{view['total']}"
    body = {"delivery_id": delivery_id, "collection_id": view["id"], "status": view["status"],
            "total": view["total"], "counts": view["counts"], "links": {"self": view["links"]["self"]}}
    return delivery_id, json.dumps(body, separators=(",", ":")).encode()


def paging(args: dict[str, str]) -> tuple[int, int]:
    """``offset`` (0..MAX_OFFSET) and ``limit`` (1..MAX_PAGE, default 100) of a listing request."""
    return (query_values.whole_number(args.get("offset", "0"), "offset", 0, MAX_OFFSET),
            query_values.whole_number(args.get("limit", "100"), "limit", 1, MAX_PAGE))
