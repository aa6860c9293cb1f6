"""One way to turn a user's word into one of a fixed set of choices, or one clear error.

Every option with fixed choices (``--format``, ``--metric``, ``--executor``, ``--to``,
``--merge``, ...) and every library argument a user's file or command passes on as text goes
through :func:`choose`, so a wrong word always reads the same: the key, the word, what kind
of choice it is and every allowed value.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TypeVar

from lipobench.errors import UserError

__all__ = ["choose"]

E = TypeVar("E", bound=enum.Enum)


def _spoken(values: list[str]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def choose(options: type[E] | Iterable[str], value, *, key: str, what: str) -> E | str:
    """The choice ``value`` names among ``options`` (an Enum class, or names), else a UserError.

    An enum member is returned as it is; a string matches a member's value or a name exactly,
    or ignoring case when that leaves exactly one. The error is one line: ``KEY VALUE:
    unknown WHAT; use A, B or C``.

    >>> class Fmt(enum.Enum):
    ...     PNG = "png"
    ...     SVG = "svg"
    >>> choose(Fmt, "SVG", key="--format", what="format")
    <Fmt.SVG: 'svg'>
    >>> choose(["local", "dask"], "dask", key="--executor", what="executor")
    'dask'
    >>> choose(Fmt, "jpg", key="--format", what="format")
    Traceback (most recent call last):
    ...
    lipobench.errors.UserError: --format jpg: unknown format; use png or svg
    """
    is_enum = isinstance(options, type) and issubclass(options, enum.Enum)
    if is_enum and isinstance(value, options):
        return value
    names = [str(m.value) for m in options] if is_enum else list(options)
    text = str(value)
    found = text if text in names else None
    if found is None:
        folded = [n for n in names if n.lower() == text.lower()]
        found = folded[0] if len(folded) == 1 else None
    if found is None:
        raise UserError(f"{key} {text}: unknown {what}; use {_spoken(names)}")
    return options(found) if is_enum else found
