"""Small helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["print_json", "add_json_flag", "add_force_flag", "examples_epilog", "subparser",
           "positive_int", "add_scan_options"]


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (the ``--json`` output scripts consume)."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def add_json_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--json", action="store_true",
                    help="print machine-readable JSON on stdout instead of a table")


def add_force_flag(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--force", action="store_true",
                    help="replace existing results instead of refusing")


def examples_epilog(*lines: str) -> str:
    """Format an ``Examples:`` block for a subparser's epilog."""
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)


def subparser(sub: Any, name: str, *, help: str, description: str,
              examples: list[str]) -> argparse.ArgumentParser:
    """Add a subcommand with a description and an examples epilog, formatted raw."""
    return sub.add_parser(name, help=help, description=description,
                          epilog=examples_epilog(*examples),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1; ``1_000_000`` and ``1,000,000`` are accepted."""
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def image_size(text: str) -> tuple[int, int]:
    """argparse type: ``WxH`` in pixels, each side 16..8192.

    Examples
    --------
    >>> image_size("800x600")
    (800, 600)
    """
    w, sep, h = text.lower().partition("x")
    try:
        size = (int(w), int(h))
    except ValueError:
        size = (0, 0)
    if not sep or not all(16 <= s <= 8192 for s in size):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels (16..8192 each), "
                                         f"e.g. 1024x768; got {text!r}")
    return size


def add_scan_options(sp: argparse.ArgumentParser) -> None:
    """``--series``, ``--phase`` and ``--allow-gaps``: which volume to read from a scan."""
    sp.add_argument("--series", metavar="S",
                    help="which DICOM series: the index shown by `cardioplan info` (e.g. 2 or "
                         "#2), a SeriesNumber (e.g. 301), a SeriesInstanceUID, or words from "
                         "the series description (e.g. 'best diast'); default the largest 3D "
                         "series, CT preferred")
    sp.add_argument("--phase", metavar="P",
                    help="which cardiac phase of a 4D series: a 1-based index (e.g. 3) or a "
                         "percentage of the R-R interval (e.g. 75%%); default mid-diastole "
                         "(closest to 75%%) when known, else the first")
    sp.add_argument("--allow-gaps", action="store_true",
                    help="load a series with missing slices or irregular spacing by linear "
                         "interpolation onto a regular grid at the typical spacing, instead of "
                         "refusing")
