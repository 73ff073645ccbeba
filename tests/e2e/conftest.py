"""Fixtures for end-to-end tests: a fake Discord and a real Red process per test module.

- ``fake_discord`` (module): the fake Discord server (``FakeDiscord``), running in a thread.
- ``red`` (module): a Red instance set up in a temporary directory and started against it;
  stopped (and its database dropped) after the module. Override ``red_env`` (dict of
  environment variables, e.g. provider base URLs and keys) and ``red_backend`` (``"json"`` or
  ``"postgres"``; the default comes from ``LOOPFLOW_E2E_BACKEND``, else ``json``) in a test
  module to configure it. The postgres backend gets a fresh database per module on the
  server of ``postgres_env`` (PG* variables, or a throwaway server). ``red_options`` (dict)
  passes further ``RedProcess`` arguments, e.g. ``python`` (another environment's
  interpreter) or ``args`` (extra ``redbot`` options).
- ``discord`` (function): ``fake_discord`` with Red ready; faults, latency and the bot's
  permissions are reset after each test.
- ``llm`` (module, from ``tests/conftest.py``): the fake LLM servers; the default ``red_env``
  points Red at them (``harness.provider_env``); each test starts with an empty queue and
  record (``fresh_llm``). ``cog`` (module): Red with loopflow loaded from this checkout;
  ``mates`` (module): and the mates ``mate_names`` names created (override it per module).

Every module ends with a check that the fake Discord saw no route it does not implement:
a call Red makes that the fake answers with a made-up 404 is a test that proves nothing.

The fixtures are synchronous: the fake Discord has its own loop in its own thread and Red is
a subprocess, so tests may be ``async def`` on any pytest-asyncio loop scope.

When a test fails, the report gets sections with the tail of Red's log, the fake Discord's
unknown routes and the last REST calls.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # also under --import-mode=importlib
    sys.path.insert(0, str(HERE))

from fake_discord import FakeDiscord  # noqa: E402
from fake_llm import ThreadedFakeLLM  # noqa: E402
from harness import (  # noqa: E402
    CHECKOUT,
    RedProcess,
    pg_settings,
    postgres_available,
    provider_env,
    run_blocking,
)

RED_KEY = pytest.StashKey[RedProcess]()
FAKE_KEY = pytest.StashKey[FakeDiscord]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under ``tests/e2e`` carries the ``e2e`` marker (``-m "not e2e"`` skips them)."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def fake_discord(request: pytest.FixtureRequest) -> Iterator[FakeDiscord]:
    """A fake Discord on 127.0.0.1 for this test module."""
    with FakeDiscord() as fake:
        request.node.stash[FAKE_KEY] = fake
        yield fake


@pytest.fixture(scope="module")
def red_backend() -> str:
    """Red's storage backend: ``$LOOPFLOW_E2E_BACKEND`` or ``json``; override per module."""
    return os.environ.get("LOOPFLOW_E2E_BACKEND", "json")


@pytest.fixture(scope="module", autouse=True)
def no_unknown_routes(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the module: the fake Discord was asked for no route it does not implement.

    Autouse in every module of this folder, the PostgreSQL variants that import another
    module's tests included (pytest collects those tests again, with this fixture, under
    the importing module). A module that never started the fake has nothing to check.
    """
    yield
    fake = request.node.stash.get(FAKE_KEY, None)
    if fake is not None:
        unknown = fake.unknown_routes
        assert unknown == [], f"Red called routes the fake Discord does not know: {unknown}"


@pytest.fixture(scope="module")
def red_env(llm: ThreadedFakeLLM) -> dict[str, Optional[str]]:
    """Extra environment variables for Red (``None`` removes one): by default, keys and base
    URLs that point both SDKs at the module's fake LLM. Override per module."""
    return provider_env(llm)


@pytest.fixture(scope="module")
def cog(red: RedProcess) -> None:
    """Red with the loopflow cog of this checkout loaded (``!addpath`` + ``!load``)."""

    async def load() -> None:
        await red.addpath(CHECKOUT)
        await red.load("loopflow")

    run_blocking(load(), timeout=120)


@pytest.fixture(scope="module")
def mate_names() -> tuple[str, ...]:
    """The mates ``mates`` creates, in this order. Override per module."""
    return ("maya",)


@pytest.fixture(scope="module")
def mates(red: RedProcess, cog: None, mate_names: tuple[str, ...]) -> tuple[str, ...]:
    """Red with the cog loaded and each of ``mate_names`` created by the owner
    (``!mate create <name>``: maya and merlin are the built-in mates, merlin on Anthropic;
    other names get a generic prompt, on OpenAI); the names. A module whose every test
    needs them says ``pytestmark = pytest.mark.usefixtures("mates")``."""

    async def create() -> None:
        for name in mate_names:
            answer = await red.owner_command(f"!mate create {name}")
            assert answer.content.startswith("Created"), answer.content

    run_blocking(create(), timeout=30 + 15 * len(mate_names))
    return mate_names


@pytest.fixture(scope="module")
def red_options() -> dict[str, Any]:
    """Further keyword arguments for ``RedProcess`` (``python``, ``args``). Override per module."""
    return {}


@pytest.fixture(scope="session")
def postgres_env() -> Iterator[dict[str, str]]:
    """PG* settings of a PostgreSQL server for Red's postgres backend.

    Taken from the environment when PGHOST or PGPORT is set; otherwise a throwaway server
    is started for the session when ``postgres_server.py`` finds PostgreSQL's binaries;
    otherwise the tests that need it are skipped.
    """
    if postgres_available():
        yield pg_settings()
        return
    try:
        from postgres_server import postgres_server, server_binaries
    except ImportError:
        pytest.skip("PostgreSQL backend: set PGHOST/PGPORT (no throwaway server helper found)")
    if server_binaries() is None:
        pytest.skip("PostgreSQL backend: set PGHOST/PGPORT or install PostgreSQL's server")
    with postgres_server() as env:
        yield env


@pytest.fixture(scope="module")
def red(
    request: pytest.FixtureRequest,
    fake_discord: FakeDiscord,
    red_backend: str,
    red_env: dict[str, Optional[str]],
    red_options: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RedProcess]:
    """A running Red process (prefix ``!``, owner ``alice``) for this test module."""
    pg_env = request.getfixturevalue("postgres_env") if red_backend == "postgres" else None
    root = tmp_path_factory.mktemp(f"red-{request.module.__name__.rsplit('.', 1)[-1]}")
    process = RedProcess(
        fake_discord, root, backend=red_backend, env=red_env, pg_env=pg_env, **red_options
    )
    request.node.stash[RED_KEY] = process
    try:
        process.setup()
        process.start()
        yield process
    finally:
        process.close()


@pytest.fixture
def discord(fake_discord: FakeDiscord, red: RedProcess) -> Iterator[FakeDiscord]:
    """The fake Discord with Red running; faults and permission changes end with the test."""
    yield fake_discord
    fake_discord.reset()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Attach Red's log tail and the fake Discord's view to failing e2e tests."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    module = item.getparent(pytest.Module)
    if module is None:
        return
    red = module.stash.get(RED_KEY, None)
    fake = module.stash.get(FAKE_KEY, None)
    if red is not None:
        report.sections.append(("Red log (tail)", red.log_tail(120)))
        blocked = red.blocked_connections()
        if blocked:
            report.sections.append(("Red: blocked outbound connections", "\n".join(blocked)))
    if fake is not None and fake.running:
        if fake.unknown_routes:
            report.sections.append(("fake Discord: unknown routes", "\n".join(fake.unknown_routes)))
        calls = fake.calls()[-30:]
        report.sections.append(("fake Discord: last REST calls", "\n".join(map(str, calls))))
