"""The stored-data tests of ``test_data.py`` once more, on Red's PostgreSQL backend, where
the batched records are written a row per server and stored keys come back reordered.

As ``test_mission_postgres.py``: the tests and fixtures are ``test_data``'s own, collected
again here with this module's fake Discord and Red process on a fresh database.
"""

from __future__ import annotations

import pytest
from on_postgres import red_backend, test_that_red_ran_on_postgres  # noqa: F401
from test_data import *  # noqa: F403  (the tests and fixtures to run again)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


