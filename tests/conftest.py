"""Shared pytest fixtures. ``tests/`` has no ``__init__.py``; pytest puts this folder on
``sys.path``, so test modules can ``import fake_llm``.

On CI (``CI`` set to anything but ``""``/``0``/``false``) a skipped test fails: a suite that
goes green by skipping (no PostgreSQL, a missing tool) proves nothing. Expected failures
(``xfail``) are not skips and stay as they are.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from fake_llm import FakeLLMServer, ThreadedFakeLLM, start_in_thread


def on_ci() -> bool:
    """Whether the run is on CI (``CI`` set, as CI services and ``.ci/run`` do)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """On CI, report a skipped test as failed, with the reason it was skipped."""
    outcome = yield
    report = outcome.get_result()
    if on_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped on CI, where every test must run: {reason}"


_PASSING = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """On CI, any skip left (e.g. a whole module skipped at collection) fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if on_ci() and skipped and session.exitstatus in _PASSING:
        reporter.ensure_newline()
        reporter.write_line(f"{len(skipped)} skipped on CI: every test must run there", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
async def llm_server() -> AsyncIterator[FakeLLMServer]:
    """A fake OpenAI + Anthropic HTTP server on 127.0.0.1, in the test's event loop."""
    server = FakeLLMServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(autouse=True)
def fresh_llm(request: pytest.FixtureRequest) -> None:
    """Every test that uses the module's fake LLM (``llm``, also through Red's environment)
    starts with an empty queue and no recorded requests."""
    if "llm" in request.fixturenames:
        request.getfixturevalue("llm").server.reset()


@pytest.fixture(scope="module")
def llm() -> Iterator[ThreadedFakeLLM]:
    """A fake OpenAI + Anthropic server in its own thread, for a whole module (its own
    loop, so any test loop and subprocesses can use it)."""
    with start_in_thread() as handle:
        yield handle
