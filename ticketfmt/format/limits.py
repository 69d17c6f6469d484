"""The bounds every ticket header must stay within, and a JSON parser that enforces them (imports no torch).

A header is attacker-controlled input: each limit here keeps the work of reading one
linear in its size and small in absolute terms, whatever it holds. ``docs/SPEC.md``
("Limits") states the same numbers; a reader MUST refuse a header beyond any of them, so
a file either fits every conforming reader or none.

Example:
    >>> loads('{"a": [1, 2.5, "x"]}')
    {'a': [1, 2.5, 'x']}
    >>> loads('{"a": 1, "a": 2}')
    Traceback (most recent call last):
    ...
    ValueError: duplicate key 'a'
    >>> shape_problem([0, 2**40]), shape_problem([2**41])
    (None, 'dimension 2199023255552 is over 2**40')
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["MAX_HEADER_BYTES", "MAX_TENSORS", "MAX_RANK", "MAX_DIM", "MAX_NAME_CHARS", "MAX_METADATA_KEYS",
           "MAX_JSON_DEPTH", "MAX_INT_DIGITS", "loads", "dumps", "shape_problem", "json_depth"]

MAX_HEADER_BYTES = 16 << 20
"""The header's length ``N`` (16 MiB; a CIFAR ResNet-1202 ticket with trained weights needs 2 MB)."""
MAX_TENSORS = 65_536
"""Tensor entries in the header, and entries of the ``layers`` table."""
MAX_RANK = 8
"""Dimensions of a shape (tensor entries and ``layers``)."""
MAX_DIM = 1 << 40
"""Each dimension, and the product of a shape's non-zero dimensions (so sizes fit any reader's integers)."""
MAX_NAME_CHARS = 1_024
"""Characters of a tensor name, a ``layers`` key and a metadata key."""
MAX_METADATA_KEYS = 1_024
"""Keys of ``__metadata__``."""
MAX_JSON_DEPTH = 32
"""Nesting of arrays and objects in the header and in each JSON metadata value (the header itself is 3 deep)."""
MAX_INT_DIGITS = 40
"""Digits of an integer literal (a 128-bit integer has 39)."""

# Pre-scans of the raw text, at C speed: JSON strings (possessive: no backtracking), a run of digits too long for
# a number literal, and the innermost array or object (stripped pass by pass to measure the nesting).
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"')
_LONG_DIGITS = re.compile(r"\d{%d,}" % (MAX_INT_DIGITS + 1))
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_INNERMOST = re.compile(r"\[\]|\{\}")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json accepts NaN and Infinity; RFC 8259 does not


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise ValueError(f"duplicate key {dup[:60]!r}")
    return obj


def _prescan(text: str) -> None:
    """Refuse over-long number literals and nesting over :data:`MAX_JSON_DEPTH` before parsing (linear)."""
    bare = _STRING.sub('""', text)
    if _LONG_DIGITS.search(bare):
        raise ValueError(f"a number literal with over {MAX_INT_DIGITS} digits")
    brackets = _NOT_BRACKET.sub("", bare)
    for _ in range(MAX_JSON_DEPTH):
        brackets, removed = _INNERMOST.subn("", brackets)
        if not brackets or not removed:
            return  # fully nested within the limit, or malformed (the parser says how)
    if brackets:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep")


def json_depth(value: Any) -> int:
    """The nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1); iterative, linear.

    Example:
        >>> json_depth({"a": [[1], 2]}), json_depth("x")
        (3, 0)
    """
    depth, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        depth = max(depth, level)
        stack.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return depth


def loads(text: str | bytes) -> Any:
    """Strict, bounded JSON (RFC 8259): raises ``ValueError`` on anything the spec's limits refuse.

    Refused besides malformed JSON: duplicate object keys, ``NaN`` / ``Infinity`` and numbers
    that overflow a double, number literals with a run of over :data:`MAX_INT_DIGITS` digits,
    and nesting over :data:`MAX_JSON_DEPTH`. Work is linear in the text (the nesting is
    measured before parsing, so the parser never recurses deeper than the limit).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    _prescan(text)
    try:
        return json.loads(text, object_pairs_hook=_pairs, parse_float=_float, parse_constant=_constant)
    except RecursionError:  # only if called already deep in the stack
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at character {e.pos})") from None


def dumps(value: Any, **kwargs: Any) -> str:
    """Compact JSON that :func:`loads` reads back: writers use it, so no file is written that readers refuse.

    Raises ``ValueError`` for ``NaN`` / infinities, nesting over :data:`MAX_JSON_DEPTH` and
    over-long number literals (``kwargs`` go to ``json.dumps``, e.g. ``sort_keys=True``).

    Example:
        >>> dumps({"b": [1, 2.5], "a": "x"}, sort_keys=True)
        '{"a":"x","b":[1,2.5]}'
        >>> dumps({"loss": float("nan")})
        Traceback (most recent call last):
        ...
        ValueError: holds NaN or an infinity, which JSON cannot represent
    """
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False, **kwargs)
    except ValueError:
        raise ValueError("holds NaN or an infinity, which JSON cannot represent") from None
    except RecursionError:
        raise ValueError(f"nested more than {MAX_JSON_DEPTH} deep") from None
    _prescan(text)
    return text


def shape_problem(shape: Any) -> str | None:
    """What is wrong with a shape under the limits (None when it is a valid shape); constant time.

    A shape is a list of at most :data:`MAX_RANK` integers in ``[0, MAX_DIM]`` whose non-zero
    dimensions multiply to at most :data:`MAX_DIM`.
    """
    if not isinstance(shape, list):
        return "shape is not a list"
    if len(shape) > MAX_RANK:
        return f"rank {len(shape)} is over {MAX_RANK}"
    product = 1
    for d in shape:
        if type(d) is not int or d < 0:
            text = repr(d)
            return f"dimension {text if len(text) <= 24 else text[:21] + '...'} is not a non-negative integer"
        if d > MAX_DIM:
            return f"dimension {d} is over 2**40"
        if d:
            product *= d  # at most 8 factors of at most 2**40: a bounded integer
    return "the non-zero dimensions multiply to over 2**40" if product > MAX_DIM else None
