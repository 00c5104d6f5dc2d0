"""Small helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["print_json", "add_json_flag", "add_force_flag", "examples_epilog", "subparser",
           "positive_int"]


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
