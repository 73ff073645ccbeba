"""``test_store_discord.py`` once more, on Red's PostgreSQL backend: the records are a row
per server there, and a reply after a restart still finds its mate.

As ``test_data_postgres.py``: the tests and fixtures are ``test_store_discord``'s own,
collected again here with this module's fake Discord and Red process on a fresh database.
"""

from __future__ import annotations

import pytest
from on_postgres import red_backend, test_that_red_ran_on_postgres  # noqa: F401
from test_store_discord import *  # noqa: F403  (the tests and fixtures to run again)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.usefixtures("mates")]


