"""Network reachability for the weight download: is the hub meant to be offline, and does a
host answer within a short timeout (a hung DNS lookup never blocks the caller)."""

from __future__ import annotations

import os
import socket
import threading

__all__: list[str] = []

_TRUTHY = {"1", "true", "yes", "on"}


def _env_offline_reason() -> str | None:
    """Why the Hugging Face hub must not be contacted (offline variables or mode), or ``None``."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in _TRUTHY:
            return f"{var}={os.environ[var]}"
    try:
        from huggingface_hub import constants

        if getattr(constants, "HF_HUB_OFFLINE", False):
            return "huggingface_hub is in offline mode"
    except ImportError:
        return "huggingface_hub is not installed"
    return None


def _probe(host: str, port: int, timeout: float) -> str | None:
    """Try a TCP connection (DNS included) within ``timeout`` s; return a failure reason or ``None``."""
    result: list[str | None] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(None)
        except OSError as exc:
            result.append(f"{type(exc).__name__}: {exc}")

    worker = threading.Thread(target=attempt, daemon=True)  # a hung DNS lookup is left behind
    worker.start()
    worker.join(timeout)
    if not result:
        return f"no answer from {host}:{port} within {timeout:g} s"
    if result[0] is not None:
        return f"cannot reach {host}:{port} ({result[0]})"
    return None
