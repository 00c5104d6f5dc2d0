"""Progress bars for long work, off unless a front end (the CLI) switches them on.

Library functions wrap their long loops in :func:`progress`; by default nothing is shown, so
library users and tests see no output.  The CLI calls :func:`enable` when stderr is a terminal
and ``--quiet`` was not given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["progress", "enable", "is_enabled"]

T = TypeVar("T")
_enabled = False


def enable(on: bool = True) -> None:
    """Switch progress bars on (or off) for this process."""
    global _enabled
    _enabled = on


def is_enabled() -> bool:
    return _enabled


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None,
             unit: str = "it") -> Iterator[T]:
    """Iterate over ``iterable``, showing a tqdm bar on stderr when enabled."""
    if not _enabled:
        yield from iterable
        return
    from tqdm import tqdm

    yield from tqdm(iterable, desc=desc, total=total, unit=unit, leave=False, dynamic_ncols=True)
