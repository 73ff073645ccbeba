"""Make the libraries that Red's Downloader installed for the cog fit the Red that runs them.

Why this is needed (Red 3.5, ``redbot/cogs/downloader``): ``Downloader._install_requirements``
runs one ``python -m pip install -U -t <lib folder> <requirement>`` per requirement of
``info.json`` (``Repo.install_raw_requirements``), in the order of a ``set``, which changes with
every Red process. ``-t`` makes pip ignore everything already installed, so each run takes the
newest release of everything its requirement needs and replaces the lib folder's copies. Red
appends the lib folder to ``sys.path`` after its own environment, so a library both have is
imported from Red's environment: Red 3.5 pins ``typing-extensions`` 4.13.2, while the newest
pydantic-core imports ``typing_extensions.Sentinel`` (new in 4.14) and fails. No pin in
``info.json`` can prevent that: a pin only constrains its own pip run, and any later run (for
``openai`` or ``anthropic``, which need pydantic) resolves again without it.

:func:`fit_libraries` checks, in a child interpreter with Red's ``sys.path``, that the
requirements import. When they do not, it installs them again into the lib folder in one pip
run, constrained to the version of every distribution Red's environment has (the copies
that import finds first): the newest set that fits this Red.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import logging
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

log = logging.getLogger(__name__)

# Seconds. pip resolves and downloads from the package registry (Downloader's own runs have
# no bound); importing the SDKs takes a few seconds on a busy machine.
PIP_TIMEOUT = 900.0
PROBE_TIMEOUT = 120.0
# What an error message keeps of pip's or the probe's output (pip's is logged whole): the
# last lines, at most this many characters (the message reaches Discord).
OUTPUT_TAIL_LINES = 3
OUTPUT_TAIL_CHARS = 600

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
# PEP 440 versions as ``==`` accepts them (a local part such as ``+cpu`` included).
_VERSION = re.compile(
    r"(\d+!)?\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?",
    re.IGNORECASE,
)
_PROBE = (
    "import importlib, json, sys\n"
    "sys.path[:] = json.loads(sys.argv[1])\n"
    "for name in sys.argv[2:]:\n"
    "    importlib.import_module(name)\n"
)


class LibraryFitError(Exception):
    """The lib folder's libraries do not import and could not be installed again; the
    message says why (the tail of pip's output)."""


def module_name(requirement: str) -> str:
    """The top-level module of a requirement: ``"bpe-openai>=0.1.4"`` -> ``"bpe_openai"``.

    The rule (the distribution's name with ``-`` and ``.`` as ``_``) holds for the cog's
    requirements; a unit test checks each of them. Raises ``ValueError`` for a requirement
    that does not start with a distribution name.
    """
    found = _NAME.match(requirement.strip())
    if found is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-.]+", "_", found.group()).lower()


def ahead_of(lib: Path, search_path: Sequence[str]) -> list[str]:
    """The entries of ``search_path`` before ``lib`` (all of them when ``lib`` is not there):
    where import looks before it reaches the lib folder."""
    target = lib.resolve()
    for index, entry in enumerate(search_path):
        if Path(entry or ".").resolve() == target:
            return list(search_path[:index])
    return list(search_path)


def environment_pins(search_path: Sequence[str]) -> list[str]:
    """``name==version`` for each distribution found on ``search_path`` (the first of each
    name, as import finds it), sorted; distributions whose version ``==`` cannot express are
    left out."""
    pins: dict[str, str] = {}
    for dist in importlib.metadata.distributions(path=list(search_path)):
        name = dist.metadata["Name"] or ""
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in pins or not _NAME.fullmatch(name) or not _VERSION.fullmatch(dist.version):
            continue
        pins[key] = f"{name}=={dist.version}"
    return sorted(pins.values())


async def import_failure(
    modules: Sequence[str], search_path: Sequence[str], *, python: str = sys.executable
) -> Optional[str]:
    """Import ``modules`` in a child ``python`` whose ``sys.path`` is ``search_path``.

    A child, so a failed import leaves nothing half-imported in this process. Returns None
    when all import, else the last lines of the child's error output. Raises
    ``LibraryFitError`` when the child does not finish within ``PROBE_TIMEOUT``.
    """
    command = [python, "-c", _PROBE, json.dumps(list(search_path)), *modules]
    code, output = await _run(command, PROBE_TIMEOUT, "importing the libraries")
    return None if code == 0 else _tail(output)


async def install_together(
    requirements: Sequence[str], lib: Path, pins: Sequence[str], *, python: str = sys.executable
) -> None:
    """Install ``requirements`` into ``lib`` in one pip run, within ``pins``.

    The command is Downloader's (``pip install -U -t <lib>``) with a constraints file of
    ``pins``, so the libraries pip resolves are the newest that fit the pinned versions.
    Raises ``LibraryFitError`` with the tail of pip's output when pip fails or takes longer
    than ``PIP_TIMEOUT``.
    """
    with tempfile.TemporaryDirectory(prefix="loopflow-pins-") as folder:
        constraints = _write_lines(Path(folder) / "constraints.txt", pins)
        command = [python, "-m", "pip", "install", "-U", "-t", str(lib), "-c", str(constraints)]
        code, output = await _run([*command, *requirements], PIP_TIMEOUT, "pip")
    if code != 0:
        log.error("pip could not install %s into %s:\n%s", requirements, lib, output)
        raise LibraryFitError(f"pip failed: {_tail(output)}")
    log.info("Installed %s into %s within this Red's versions.", ", ".join(requirements), lib)


async def fit_libraries(
    requirements: Sequence[str],
    lib: Path,
    *,
    search_path: Optional[Sequence[str]] = None,
    python: str = sys.executable,
) -> bool:
    """Make ``requirements`` importable with the interpreter's ``search_path`` (default
    ``sys.path``), installing them again into ``lib`` if they do not import.

    Returns False when they already imported, True when they were installed again and now
    import. Raises ``LibraryFitError`` when pip fails or the libraries still do not import.
    """
    path = list(sys.path if search_path is None else search_path)
    modules = [module_name(requirement) for requirement in requirements]
    failure = await import_failure(modules, path, python=python)
    if failure is None:
        return False
    log.warning(
        "The libraries in %s do not fit this Red (%s); installing %s again within its versions.",
        lib,
        failure,
        ", ".join(requirements),
    )
    await install_together(requirements, lib, environment_pins(ahead_of(lib, path)), python=python)
    failure = await import_failure(modules, path, python=python)
    if failure is not None:
        raise LibraryFitError(f"still not importable after installing them again: {failure}")
    return True


def _write_lines(file: Path, lines: Sequence[str]) -> Path:
    file.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return file


def _tail(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-OUTPUT_TAIL_LINES:])[-OUTPUT_TAIL_CHARS:] or "no output"


async def _run(command: Sequence[str], timeout: float, doing: str) -> tuple[int, str]:
    """Run ``command``; its exit code and its stdout and stderr together (decoded). Raises
    ``LibraryFitError`` naming ``doing`` when it runs longer than ``timeout`` seconds."""
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise LibraryFitError(f"{doing} took longer than {timeout:.0f} s") from None
    return process.returncode or 0, output.decode("utf-8", "replace")
