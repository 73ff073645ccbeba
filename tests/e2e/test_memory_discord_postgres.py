"""Memory (``test_memory_discord.py``) once more, on Red's PostgreSQL backend.

The summaries, notes, opt-outs and their deletion live in Red's Config; this module runs the
same tests (imported, collected again here with this module's fake Discord, fake LLM and Red
process) with Red on a fresh PostgreSQL database (a throwaway server, or the one PG* points
at; skipped without either, see ``conftest.postgres_env``). What is stored is read back with
``RedProcess.stored_text``, which reads the database on this backend.
"""

from __future__ import annotations

import pytest
from on_postgres import red_backend, test_that_red_ran_on_postgres  # noqa: F401
from test_memory_discord import *  # noqa: F403  (the tests and fixtures to run again)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


