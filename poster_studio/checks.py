"""Argument checks the services use (each service validates once, in its `check_inputs`): a widget / API /
command-line value in a range or among choices, or an InvalidArgumentError with a one-line message naming the
argument. The same message reaches the CLI, the library caller and the API client."""
from __future__ import annotations

import math
from typing import Any

from .errors import InvalidArgumentError


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    """A whole number in [lo, hi] from a widget/API value (floats like 3.0 accepted); InvalidArgumentError else."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        raise InvalidArgumentError(f"{name} is missing: give a whole number from {lo} to {hi}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a whole number, got {value!r}.") from None
    if not math.isfinite(v) or v != int(v) or not lo <= v <= hi:
        raise InvalidArgumentError(f"{name} must be a whole number from {lo} to {hi}, got {value!r}.")
    return int(v)


def check_float(name: str, value: Any, lo: float, hi: float) -> float:
    if value is None or isinstance(value, bool):
        raise InvalidArgumentError(f"{name} is missing: give a number from {lo:g} to {hi:g}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(v) or not lo <= v <= hi:
        raise InvalidArgumentError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}.")
    return v


def check_bool(name: str, value: Any) -> bool:
    """True / False from a checkbox, a JSON boolean, 0 / 1, or the words true / false, yes / no, on / off."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    raise InvalidArgumentError(f"{name} must be true or false, got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of `choices` (case and surrounding spaces ignored)."""
    v = str(value).strip().lower() if value is not None else ""
    for c in choices:
        if v == c.lower():
            return c
    raise InvalidArgumentError(f"{name} must be one of {', '.join(choices)}, got {value!r}.")


def check_size(name: str, value: Any, lo: int, hi: int) -> tuple[int, int]:
    """(W, H) from 'WxH' or a pair, each side in [lo, hi]."""
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
        if len(parts) != 2:
            raise InvalidArgumentError(f"{name} must look like 384x576 (WxH), got {value!r}.")
        value = parts
    try:
        w, h = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be WxH, got {value!r}.") from None
    return check_int(f"{name} width", w, lo, hi), check_int(f"{name} height", h, lo, hi)
