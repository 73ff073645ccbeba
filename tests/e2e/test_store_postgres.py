"""``test_store_discord.py`` once more, on Red's PostgreSQL backend: the records are a row
per server there, and a reply after a restart still finds its mate.

As ``test_data_postgres.py``: the tests and fixtures are ``test_store_discord``'s own,
collected again here with this module's fake Discord and Red process on a fresh database.
"""

from __future__ import annotations

import pytest
from harness import RedProcess
from test_store_discord import *  # noqa: F403  (the tests and fixtures to run again)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.usefixtures("mates")]


@pytest.fixture(scope="module")
def red_backend() -> str:
    """This module runs Red on PostgreSQL."""
    return "postgres"


def test_that_red_ran_on_postgres(red: RedProcess) -> None:
    assert red.backend == "postgres" and red.database is not None
