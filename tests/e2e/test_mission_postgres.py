"""The mission path of ``test_mission.py`` once more, on Red's PostgreSQL backend.

The tests and their fixtures are ``test_mission``'s own, imported here: pytest collects them
again in this module, with this module's fake Discord, fake LLM and Red process, and the
``red_backend`` below puts that Red on a fresh PostgreSQL database (a throwaway server, or
the one PG* points at; skipped without either, see ``conftest.postgres_env``).
"""

from __future__ import annotations

import pytest
from harness import RedProcess
from test_mission import *  # noqa: F403  (the tests and fixtures to run again)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


@pytest.fixture(scope="module")
def red_backend() -> str:
    """This module runs Red on PostgreSQL."""
    return "postgres"


def test_that_red_ran_on_postgres(red: RedProcess) -> None:
    assert red.backend == "postgres" and red.database is not None
