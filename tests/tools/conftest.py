"""Fixtures for the tools suite: the machine's standard library mined once for the session."""

from __future__ import annotations

import pytest

from codestill.schemas import Seed
from tools.seeds import SeedReport, mine_seeds


@pytest.fixture(scope="session")
def stdlib_mined() -> tuple[list[Seed], SeedReport]:
    """Seeds from the running interpreter's standard library, as `codestill seeds mine --stdlib` mines
    them (Pyright where it is on PATH)."""
    return mine_seeds(stdlib=True)
