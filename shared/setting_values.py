"""Reading one ``OCR_*`` value and checking settings: the helpers of ``shared.settings``."""

from __future__ import annotations

from shared.errors import ConfigError


def parse(name: str, raw: str, kind: type) -> object:
    env_name = "OCR_" + name.upper()
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind in (int, float):
            return kind(raw.strip())
    except ValueError:
        raise ConfigError(f"{env_name}={raw!r} is not a valid {kind.__name__}") from None
    return raw


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)
