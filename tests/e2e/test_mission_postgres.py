"""The mission path of ``test_mission.py`` once more, on Red's PostgreSQL backend.

The tests and their fixtures are ``test_mission``'s own, imported here: pytest collects them
again in this module, with this module's fake Discord, fake LLM and Red process, and the
``red_backend`` below puts that Red on a fresh PostgreSQL database (a throwaway server, or
the one PG* points at; skipped without either, see ``conftest.postgres_env``).
"""

from __future__ import annotations

import pytest
from on_postgres import red_backend, test_that_red_ran_on_postgres  # noqa: F401
from test_mission import *  # noqa: F403  (the tests and fixtures to run again)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


