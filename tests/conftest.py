"""Shared test helpers: where the reference fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_fixtures() -> Path | None:
    # CI clones the project with shared/ beside it; helpers' worktrees fall back to the workplace copy.
    for candidate in (REPO.parent / "shared" / "fixtures", Path("/work/shared/fixtures")):
        if candidate.is_dir():
            return candidate
    return None


FIXTURES = _find_fixtures()


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The folder ../shared/fixtures (reference files in the real formats)."""
    if FIXTURES is None:
        pytest.skip("../shared/fixtures is not beside this checkout")
    return FIXTURES
