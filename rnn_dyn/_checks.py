"""Shared input checks: each raises with the field's name, what is allowed and what came."""
from __future__ import annotations

import math
import numbers


def check_choice(name, value, choices):
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}; got {value!r}.")
    return value


def _check_number(name, value, integer):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {what}; got {value!r}.")
    if not integer and not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value!r}.")


def check_positive(name, value, integer=False):
    """Raise unless ``value`` is a number (an integer if asked) greater than 0."""
    _check_number(name, value, integer)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value!r}.")
    return value


def check_range(name, value, low, high, integer=False, low_open=False):
    """Raise unless ``low <= value <= high`` (``low < value`` when ``low_open``)."""
    _check_number(name, value, integer)
    if value < low or value > high or (low_open and value == low):
        left = "(" if low_open else "["
        raise ValueError(f"{name} must be in {left}{low}, {high}]; got {value!r}.")
    return value


def as_real_array(X, name):
    """``X`` as a numpy array of real numbers (bool, int or float), or a ``TypeError`` naming ``name``."""
    import numpy as np

    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers; got an "
                        f"unconvertible {type(X).__name__} ({exc}).") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be an array of real numbers; got dtype {arr.dtype}.")
    return arr
