"""A real Red-DiscordBot process, run against ``FakeDiscord`` for end-to-end tests.

``RedProcess`` creates an instance with ``redbot-setup`` (JSON or PostgreSQL backend) in a
temporary directory, starts Red through ``red_launcher.py`` as a subprocess (its stdout and
stderr go to ``red.log``), waits until Red answers ``!ping`` in ``#harness``, and stops or
restarts it with its data kept.

    red = RedProcess(discord, tmp_path, env={"OPENAI_BASE_URL": ...})
    red.setup()
    red.start()
    await red.addpath(checkout); await red.load("loopflow")
    ...
    await red.restart()          # same data directory, same database
    red.close()

A new instance's first start records the Python version and skips loading packages
(``--load-cogs`` included); ``load()`` therefore loads cogs with the ``!load`` command, which
Red also remembers for later starts.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional, TypeVar

from fake_discord import FakeDiscord, HarnessTimeout
from fake_discord_model import Message
from red_launcher import GUARD_MARK

T = TypeVar("T")
HERE = Path(__file__).resolve().parent
LAUNCHER = HERE / "red_launcher.py"
PREFIX = "!"
HARNESS_CHANNEL = "harness"  # readiness pings only: a late "Pong." there confuses nobody
ADMIN_CHANNEL = "admin"
PG_VARS = ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE")


CHECKOUT = HERE.parents[1]  # the project: what `!addpath` adds for a checkout install


def provider_env(llm: Any) -> dict[str, Optional[str]]:
    """Environment that points both SDKs at a fake LLM server (``fake_llm``)."""
    return {
        "OPENAI_API_KEY": "sk-e2e",
        "OPENAI_BASE_URL": llm.server.openai_base_url,
        "ANTHROPIC_API_KEY": "sk-ant-e2e",
        "ANTHROPIC_BASE_URL": llm.server.anthropic_base_url,
    }


class RedStartError(RuntimeError):
    """Red did not get ready (the message carries the tail of its log)."""


def run_blocking(coro: Coroutine[Any, Any, T], timeout: Optional[float] = None) -> T:
    """Run a coroutine to completion on a fresh loop in a worker thread.

    Safe from sync fixtures (no clash with pytest-asyncio's loop) and from worker threads.
    """
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target, name="harness-blocking", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"blocking call did not finish in {timeout}s")
    if errors:
        raise errors[0]
    return result[0]


class RedProcess:
    """One Red instance (data dir, config, optional database) and its process."""

    def __init__(
        self,
        discord: FakeDiscord,
        root: Path,
        *,
        backend: str = "json",
        env: Optional[Mapping[str, Optional[str]]] = None,
        pg_env: Optional[Mapping[str, str]] = None,
        instance: str = "e2e",
        start_timeout: float = 90,
        python: Optional[str] = None,
        args: Sequence[str] = (),
    ) -> None:
        """``python`` runs ``redbot-setup`` and Red (default: this interpreter, whose
        environment must have Red); ``args`` are extra ``redbot`` options, e.g. ``["--dev"]``.
        """
        if backend not in ("json", "postgres"):
            raise ValueError(f"unknown backend {backend!r}")
        self.discord = discord
        self.root = root
        self.backend = backend
        self.extra_env: dict[str, Optional[str]] = dict(env or {})
        self.instance = instance
        self.start_timeout = start_timeout
        self.python = python or sys.executable
        self.args = list(args)
        self.config_home = root / "config"
        self.data_path = root / "data"
        self.log_path = root / "red.log"
        self.pg_env: dict[str, str] = {k: v for k, v in (pg_env or {}).items() if k in PG_VARS}
        self.database: Optional[str] = None
        self.starts = 0
        self.prefix = PREFIX  # what the readiness ping and the helpers type
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._log_file: Optional[Any] = None

    # ------------------------------------------------------------------------ environment

    def environment(self) -> dict[str, str]:
        """The environment Red runs with: ours, plus the instance's and the test's settings.

        ``PIP_NO_INDEX`` keeps Downloader's pip offline; a value of ``None`` in ``env``
        removes a variable.
        """
        env = dict(os.environ)
        env.update(
            {
                "XDG_CONFIG_HOME": str(self.config_home),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PIP_NO_INDEX": "1",
                "NO_COLOR": "1",
                "COLUMNS": "160",
            }
        )
        env.update(self.pg_env)
        if self.database is not None:
            env["PGDATABASE"] = self.database
        for key, value in self.extra_env.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def setup(self) -> None:
        """Create the instance with ``redbot-setup`` (and a fresh database for postgres)."""
        self.config_home.mkdir(parents=True, exist_ok=True)
        self.data_path.mkdir(parents=True, exist_ok=True)
        answers = None
        if self.backend == "postgres":
            self.database = run_blocking(_create_database(self.pg_env), timeout=30)
            # host, port, user, password ("NONE": use PGPASSWORD/passfile), database:
            # blank answers make Red use the PG* environment variables at run time.
            answers = "\n\n\nNONE\n\n"
        cmd = [
            self.python,
            "-m",
            "redbot.setup",
            "--no-prompt",
            "--instance-name",
            self.instance,
            "--data-path",
            str(self.data_path),
            "--backend",
            self.backend,
        ]
        # A new session has no controlling terminal, so getpass() reads the password from stdin.
        done = subprocess.run(
            cmd,
            input=answers,
            text=True,
            capture_output=True,
            env=self.environment(),
            timeout=120,
            start_new_session=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"redbot-setup failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )

    # ------------------------------------------------------------------------- processes

    @property
    def running(self) -> bool:
        """Whether the Red process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, *, env: Optional[Mapping[str, Optional[str]]] = None) -> None:
        """Start Red and wait until it answers ``!ping`` (``env`` adds to the test settings)."""
        if self.running:
            raise RuntimeError("Red is already running")
        self.extra_env.update(env or {})
        identifies = self.discord.gateway.stats.identifies
        cmd = self.command()
        self._log_file = self.log_path.open("ab")
        self._log_file.write(
            f"\n===== harness: start #{self.starts + 1}: {' '.join(cmd)}\n".encode()
        )
        self._log_file.flush()
        self._proc = subprocess.Popen(
            cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.environment(),
            cwd=self.root,
        )
        atexit.register(_kill, self._proc)  # no Red outlives an interrupted test run
        self.starts += 1
        try:
            run_blocking(self._wait_ready(identifies), timeout=self.start_timeout + 10)
        except BaseException:
            self.stop()
            raise

    def command(self) -> list[str]:
        """The command that starts Red against the fake Discord (subclasses may change it)."""
        return [
            self.python,
            str(LAUNCHER),
            "--fake-url",
            self.discord.url,
            self.instance,
            "--token",
            self.discord.token,
            "--owner",
            str(self.discord.owner.id),
            "--prefix",
            self.prefix,
            "--no-prompt",
            "--force-disable-rich-logging",
            *self.args,
        ]

    async def _wait_ready(self, identifies_before: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        stats = self.discord.gateway.stats
        while stats.identifies == identifies_before or not self.discord.gateway.connected:
            self._check_alive(deadline, "connecting to the gateway")
            await asyncio.sleep(0.1)
        owner = self.discord.owner
        while True:
            self._check_alive(deadline, "answering !ping")
            sent = await self.discord.send(owner, HARNESS_CHANNEL, f"{self.prefix}ping")
            try:
                await self.discord.wait_for_message(
                    lambda m: m.content == "Pong.", channel=HARNESS_CHANNEL, after=sent, timeout=2
                )
                return
            except HarnessTimeout:
                continue

    def _check_alive(self, deadline: float, doing: str) -> None:
        if self._proc is not None and self._proc.poll() is not None:
            raise RedStartError(
                f"Red exited with {self._proc.returncode} while {doing}:\n{self.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise RedStartError(
                f"Red was not ready after {self.start_timeout:g}s ({doing}):\n{self.log_tail()}"
            )

    def stop(self, timeout: float = 30, *, sig: int = signal.SIGINT) -> Optional[int]:
        """Stop Red like Ctrl+C would (SIGINT, or ``sig``, e.g. a service manager's SIGTERM;
        SIGKILL after ``timeout``); its exit code."""
        proc, self._proc = self._proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
            code = proc.returncode
        if self._log_file is not None:
            self._log_file.write(f"===== harness: Red stopped (exit code {code})\n".encode())
            self._log_file.close()
            self._log_file = None
        return code

    async def restart(self, *, env: Optional[Mapping[str, Optional[str]]] = None) -> None:
        """Stop Red and start it again on the same data (and database); waits until ready."""

        def restart() -> None:
            self.stop()
            self.start(env=env)

        await asyncio.to_thread(restart)

    def close(self) -> None:
        """Stop Red and drop the instance's database, if any (the files stay for inspection)."""
        self.stop()
        if self.database is not None:
            run_blocking(_drop_database(self.pg_env, self.database), timeout=30)
            self.database = None

    # ---------------------------------------------------------------------------- helpers

    async def stored_text(self, cog_name: str = "Loopflow") -> str:
        """Everything a cog keeps in Red's Config, as text, whichever backend Red runs on.

        The cog's own Config and those it names after itself (loopflow keeps each
        server's records under ``<cog_name>Records<server id>``). JSON: their files under
        ``cogs/<cog_name>*/``; PostgreSQL: every value of every row in their schemas
        (``red_config.red_cogs`` names them), as text. For checks that something is, or is
        no longer, stored.
        """
        if self.database is None:
            files = sorted((self.data_path / "cogs").glob(f"{cog_name}*/*.json"))
            return "\n".join(f.read_text(encoding="utf-8") for f in files)
        conn = await _admin_connection({**self.pg_env, "PGDATABASE": self.database})
        try:
            schemas = await conn.fetch(
                "SELECT schemaname FROM red_config.red_cogs WHERE cog_name LIKE $1",
                cog_name + "%",
            )
            texts = []
            for (schema,) in schemas:
                tables = await conn.fetch(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                    schema,
                )
                for (table,) in tables:
                    rows = await conn.fetch(f'SELECT * FROM "{schema}"."{table}"')
                    texts.extend(str(value) for row in rows for value in row.values())
            return "\n".join(texts)
        finally:
            await conn.close()

    async def owner_command(self, text: str, *, timeout: float = 15) -> Message:
        """Run a command as the owner in ``#admin``; the bot's answer."""
        return await self.discord.command(self.discord.owner, ADMIN_CHANNEL, text, timeout=timeout)

    async def addpath(self, path: Path) -> Message:
        """``!addpath <path>`` (persistent cog path) as the owner."""
        reply = await self.owner_command(f"{self.prefix}addpath {path}")
        assert "successfully added" in reply.content or "already" in reply.content, reply.content
        return reply

    async def load(self, *cogs: str, timeout: float = 60) -> Message:
        """``!load <cogs>`` as the owner; fails unless every cog is loaded afterwards."""
        reply = await self.owner_command(f"{self.prefix}load {' '.join(cogs)}", timeout=timeout)
        text = reply.content
        assert text.startswith("Loaded") or "already loaded" in text, f"!load failed: {text}"
        return reply

    async def load_loopflow(self, *mates: str) -> None:
        """``!addpath`` this checkout, ``!load loopflow``, and ``!mate create`` each mate."""
        await self.addpath(CHECKOUT)
        await self.load("loopflow")
        for name in mates:
            answer = await self.owner_command(f"{PREFIX}mate create {name}")
            assert answer.content.startswith("Created"), answer.content

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines of Red's output."""
        if not self.log_path.exists():
            return "(no Red log yet)"
        with self.log_path.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 200_000))
            text = fh.read().decode("utf-8", "replace")
        return "\n".join(text.splitlines()[-lines:])

    def files_containing(
        self, needles: Sequence[str], *, folders: Sequence[Path] = ()
    ) -> dict[str, list[str]]:
        """Which needles occur in which of Red's files: its output (``red.log``) and every
        file in its data folder (logs, Config), and in ``folders``; ``{path: [needles]}``."""
        paths = [self.log_path]
        for folder in (self.data_path, *folders):
            paths += sorted(p for p in folder.rglob("*") if p.is_file())
        found: dict[str, list[str]] = {}
        for path in paths:
            if not path.exists():
                continue
            text = path.read_bytes().decode("utf-8", "replace")
            hits = [needle for needle in needles if needle in text]
            if hits:
                found[str(path)] = hits
        return found

    def blocked_connections(self) -> list[str]:
        """Lines in which the launcher's network guard refused a non-loopback connection."""
        if not self.log_path.exists():
            return []
        text = self.log_path.read_text("utf-8", "replace")
        return [line for line in text.splitlines() if line.startswith(GUARD_MARK)]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()


def pg_settings(pg_env: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The PG* variables of ``pg_env``, else of our environment."""
    source = pg_env if pg_env else os.environ
    return {k: source[k] for k in PG_VARS if source.get(k)}


def postgres_available() -> bool:
    """Whether our environment points at a PostgreSQL server (PGHOST or PGPORT set)."""
    return bool(os.environ.get("PGHOST") or os.environ.get("PGPORT"))


async def _admin_connection(pg_env: Mapping[str, str]) -> Any:
    import asyncpg

    return await asyncpg.connect(
        host=pg_env.get("PGHOST"),
        port=int(pg_env["PGPORT"]) if pg_env.get("PGPORT") else None,
        user=pg_env.get("PGUSER"),
        password=pg_env.get("PGPASSWORD") or None,
        database=pg_env.get("PGDATABASE") or "postgres",
    )


async def _create_database(pg_env: Mapping[str, str]) -> str:
    """A fresh, uniquely named database on the server ``pg_env`` points at."""
    name = f"red_e2e_{uuid.uuid4().hex[:12]}"
    conn = await _admin_connection(pg_env)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_database(pg_env: Mapping[str, str], name: str) -> None:
    conn = await _admin_connection(pg_env)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
