"""Seed points for segmentation: one file format shared by the CLI, the desktop viewer and VR.

A seed is a physical point (LPS, millimetres) inside a named structure of the label table.
The seeds file (``seeds.json``)::

    {
      "schema": "cardioplan.seeds",
      "schema_version": 1,
      "space": "LPS",
      "units": "mm",
      "seeds": [{"structure": "left_ventricle", "point": [12.5, -40.0, 88.0]}, ...]
    }

``plan.json`` stores the same ``seeds`` list, so ``cardioplan segment --seeds CASE/plan.json``
works too.  On the command line, ``--seed left_ventricle=12.5,-40,88`` adds one seed.

Examples
--------
>>> parse_seed_arg("aorta=1,2.5,-3")
Seed(structure='aorta', point=(1.0, 2.5, -3.0))
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cardioplan.errors import InputError
from cardioplan.fileio import read_json, write_json_atomic
from cardioplan.labels import LABELS

__all__ = ["Seed", "parse_seed_arg", "seeds_from_json", "seeds_to_json", "read_seeds",
           "write_seeds", "SEEDS_SCHEMA_VERSION"]

SEEDS_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Seed:
    """A point (LPS mm) known to lie inside ``structure``."""

    structure: str
    point: tuple[float, float, float]

    def __post_init__(self) -> None:
        if self.structure not in LABELS:
            raise InputError(f"seed for unknown structure {self.structure!r}; use one of: "
                             f"{', '.join(LABELS.names)}")
        if len(self.point) != 3 or not all(math.isfinite(c) for c in self.point):
            raise InputError(f"seed {self.structure!r} needs three finite coordinates, got "
                             f"{self.point!r}")

    def to_json(self) -> dict[str, Any]:
        return {"structure": self.structure, "point": [float(c) for c in self.point]}


def parse_seed_arg(text: str) -> Seed:
    """Parse ``NAME=x,y,z`` (LPS mm) as given to ``--seed``."""
    name, sep, coords = text.partition("=")
    parts = coords.split(",")
    if not sep or len(parts) != 3:
        raise InputError(f"--seed {text!r}: expected NAME=x,y,z in LPS millimetres, "
                         "e.g. --seed left_ventricle=12.5,-40,88")
    try:
        point = tuple(float(p) for p in parts)
    except ValueError:
        raise InputError(f"--seed {text!r}: coordinates must be numbers (LPS mm)") from None
    return Seed(name.strip(), point)  # type: ignore[arg-type]


def seeds_from_json(items: Iterable[Any]) -> list[Seed]:
    """Seeds from the JSON ``seeds`` list (of a seeds file or a plan)."""
    seeds = []
    for i, item in enumerate(items):
        try:
            seeds.append(Seed(str(item["structure"]),
                              tuple(float(c) for c in item["point"])))  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"seed #{i} is malformed ({exc!r}); expected "
                             '{"structure": NAME, "point": [x, y, z]}') from None
    return seeds


def seeds_to_json(seeds: Iterable[Seed]) -> list[dict[str, Any]]:
    return [s.to_json() for s in seeds]


def read_seeds(path: str | os.PathLike[str]) -> list[Seed]:
    """Read seeds from a seeds file or from a ``plan.json`` (its ``seeds`` list)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"seeds file not found: {p}")
    data = read_json(p, what="seeds file")
    if not isinstance(data, dict) or not isinstance(data.get("seeds"), list):
        raise InputError(f"{p} has no 'seeds' list; see `cardioplan segment --help` for the "
                         "seeds file format")
    if data.get("schema") == "cardioplan.seeds" and \
            int(data.get("schema_version", 0)) > SEEDS_SCHEMA_VERSION:
        raise InputError(f"{p} was written by a newer CardioPlan; upgrade to read it")
    if str(data.get("space", "LPS")).upper() != "LPS":
        raise InputError(f"{p}: seeds must be in LPS space, got {data.get('space')!r}")
    return seeds_from_json(data["seeds"])


def write_seeds(path: str | os.PathLike[str], seeds: Iterable[Seed]) -> None:
    """Write a seeds file atomically."""
    write_json_atomic(path, {"schema": "cardioplan.seeds", "schema_version": SEEDS_SCHEMA_VERSION,
                             "space": "LPS", "units": "mm", "seeds": seeds_to_json(seeds)})
