"""Shared fixtures: the real public data in ../shared/data and the project's own phantom."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CARDIOPLAN_SHARED_DATA", REPO.parent / "shared" / "data"))
SAMPLE_DATA = REPO / "sample_data"

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real public data (``../shared/data``; override with CARDIOPLAN_SHARED_DATA)."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real public data not found at {SHARED_DATA} "
                    "(set CARDIOPLAN_SHARED_DATA to its folder)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample_data() -> Path:
    """The bundled synthetic phantom (``sample_data/``)."""
    return SAMPLE_DATA


@pytest.fixture(scope="session")
def validation_script() -> ModuleType:
    """``scripts/validate_segmentation.py`` imported as a module (its protocol is tested)."""
    spec = importlib.util.spec_from_file_location("validate_segmentation",
                                                  REPO / "scripts" / "validate_segmentation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("validate_segmentation", module)
    spec.loader.exec_module(module)
    return module
