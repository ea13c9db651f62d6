"""How many CPUs this process may really use: affinity, capped by a cgroup CPU quota.

In a container with ``cpus: 2`` (compose) or a Kubernetes CPU limit, ``os.cpu_count()`` still
reports every core of the host; sizing ONNX Runtime's thread pool from it oversubscribes the
quota and the kernel throttles the process. The quota lives in ``cpu.max`` (cgroup v2:
``"<quota> <period>"`` or ``"max <period>"``) or ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``
(cgroup v1; -1 = no quota).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _affinity() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota (e.g. 1.5), or None when there is no quota."""
    v2 = _read(root / "cpu.max")
    if v2:
        quota, _, period = v2.partition(" ")
        if quota != "max" and period:
            return int(quota) / int(period)
        return None
    quota_v1 = _read(root / "cpu" / "cpu.cfs_quota_us") or _read(root / "cpu.cfs_quota_us")
    period_v1 = _read(root / "cpu" / "cpu.cfs_period_us") or _read(root / "cpu.cfs_period_us")
    if quota_v1 and period_v1 and int(quota_v1) > 0:
        return int(quota_v1) / int(period_v1)
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Cores this process can use: its affinity, capped by the quota rounded up (at least 1)."""
    cpus = _affinity()
    quota = cgroup_quota(root)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)
