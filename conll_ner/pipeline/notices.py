"""Warnings that a process says once, however many pipelines or calls meet
their cause (a missing onnxruntime, a legacy config)."""

import warnings

_SAID: set = set()


def say_once(message: str) -> None:
    """Warn with `message` unless this process already has."""
    if message not in _SAID:
        _SAID.add(message)
        warnings.warn(message, stacklevel=3)
