"""Number checks shared by the library, the app and the CLI: a widget / API / command-line value in a range, or
an InvalidArgumentError with a one-line message naming the argument."""
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


def check_truncation(value: Any) -> float:
    """The generator's truncation psi, in (0, 1]."""
    t = check_float("Truncation", value, 0.0, 1.0)
    if t <= 0.0:
        raise InvalidArgumentError(f"Truncation must be above 0 (and at most 1), got {value!r}.")
    return t
