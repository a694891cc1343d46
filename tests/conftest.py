"""Shared fixtures. Reference material is read in place from ../shared (or $FASTERSEG_SHARED)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("FASTERSEG_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    root = shared_dir()
    if not (root / "reference").is_dir():
        pytest.skip(f"reference material not found at {root} (set FASTERSEG_SHARED to its location)")
    return root


@pytest.fixture(scope="session")
def official_dir(shared: Path) -> Path:
    return shared / "reference" / "official"


@pytest.fixture(scope="session")
def equivalence_dir(shared: Path) -> Path:
    return shared / "reference" / "equivalence"
