"""Run by ``loopflow red`` in a child process: write Red's own settings through Red's Config.

``python -m loopflow.red_instance <instance> <prefix> new|existing`` stores the command
prefix (stored, not passed as ``--prefix``, which would override ``[p]set prefix`` on
every start) and, for a new instance, the Python version. Red records that version on
each start, and on a new instance's first start (its stored version is a placeholder) it
loads no packages, ``--load-cogs`` included; recording it up front makes the first start
load the cog.

Red is imported inside :func:`prepare` only: the library never imports Red when it is
imported itself (``loopflow.launcher`` runs this module as a separate process).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

# Red's own default for the recorded version: anything older than the running Python
# makes Red treat the start as an upgrade.
_PLACEHOLDER_VERSION = [3, 7]


async def prepare(instance: str, prefix: str, *, new: bool) -> None:
    """Store ``prefix`` (when given) and, for a ``new`` instance, this Python's version."""
    from redbot.core import _drivers, data_manager
    from redbot.core.config import Config

    data_manager.load_basic_configuration(instance)
    driver = _drivers.get_driver_class()
    await driver.initialize(**data_manager.storage_details())
    try:
        conf = Config.get_core_conf(force_registration=False)
        conf.register_global(prefix=[], last_system_info__python_version=_PLACEHOLDER_VERSION)
        if prefix:
            await conf.prefix.set([prefix])
        if new:
            await conf.last_system_info.python_version.set(list(sys.version_info[:2]))
    finally:
        await driver.teardown()


def main(argv: Sequence[str]) -> int:
    """``<instance> <prefix> new|existing``; returns the exit status."""
    if len(argv) != 3 or argv[2] not in ("new", "existing"):
        usage = "usage: python -m loopflow.red_instance INSTANCE PREFIX new|existing"
        print(usage, file=sys.stderr)
        return 2
    instance, prefix, state = argv
    asyncio.run(prepare(instance, prefix, new=state == "new"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
