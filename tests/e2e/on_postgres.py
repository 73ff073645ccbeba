"""What makes an end-to-end module run on Red's PostgreSQL backend.

A ``*_postgres`` module imports both names::

    from on_postgres import red_backend, test_that_red_ran_on_postgres  # noqa: F401

``red_backend`` overrides the conftest's (JSON) for that module, so its Red runs on a
fresh PostgreSQL database (a throwaway server, or the one PG* points at; see
``conftest.postgres_env``), and the test proves it did.
"""

from __future__ import annotations

import pytest
from harness import RedProcess


@pytest.fixture(scope="module")
def red_backend() -> str:
    """This module runs Red on PostgreSQL."""
    return "postgres"


def test_that_red_ran_on_postgres(red: RedProcess) -> None:
    assert red.backend == "postgres" and red.database is not None
