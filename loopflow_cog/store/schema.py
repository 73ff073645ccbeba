"""What the cog stores in Red's Config, its version, and the migrations between versions.

Schema 4:

- global: ``schema_version``, ``prices`` (model -> ``Prices.to_dict()``, the owner's
  ``[p]mateset price`` overrides), ``record_servers`` (Red's JSON driver: the ids of the
  servers whose records have a Config of their own, see below);
- guild: ``mates`` (name -> ``Mate.to_dict()`` and ``created``, its place in the server's
  creation order), ``bindings`` (str(channel id) -> mate
  names, in the order bound), ``models`` (provider -> model), ``threads`` (str(thread id)
  -> id of who opened it with ``[p]mate chat``, at most :data:`CHAT_THREAD_LIMIT`),
  ``cooldown`` (seconds), ``discuss_max`` (the most rounds of a discussion), ``limits``
  (``LimitSettings.to_dict()``), ``webhook_hint_sent``,
  ``webhooks`` (ids of the webhooks the mates speak through, oldest first, at most
  :data:`WEBHOOK_LIMIT`);
- channel (Red's channel scope, which threads and DMs use too): ``reset_point``,
  ``memory`` (mate name -> its ``WindowState.to_dict()``: window start, summary, the ids
  of the people the summary folded);
- user: ``dm_guild``, ``dm_mate``, ``memory_optout`` (mates neither read nor remember
  them);
- custom group :data:`NOTES` (guild id, mate name, person id): ``facts`` (notes about the
  person, oldest first; see memory.py);
- a records document per server: ``index`` (str(message id) -> ``"mate"`` or
  ``"mate:answered message id"``, at most :data:`MESSAGE_INDEX_LIMIT`, oldest first;
  stored packed in one string, :func:`pack_index`) and ``usage``
  (mate -> ``MateUsage.to_dict()``: per model, per UTC day) and, in a server with
  limits, ``today`` (``DayCounts.to_dict()``: today's tokens per member), written in
  batches (records.py). Where it is kept follows the backend (shelves.py): on PostgreSQL
  a row of the custom group :data:`RECORDS` (guild id); on Red's JSON driver the global
  ``records`` of a Config of the server's own (cog name ``<cog>Records<guild id>``, same
  identifier), so a flush rewrites the files of the servers that changed only.

Schema 3 kept the records in the custom group :data:`RECORDS` on both backends: on JSON,
in the cog's one file, which Red rewrites whole on every write. Moving them to where the
backend keeps them is not tied to the version: it runs whenever records are found in
the other place (after ``redbot-setup convert`` too).

Schema 2 kept ``usage`` as mate -> ``{"input": int, "output": int}``: those totals become
the ``older`` part of one ledger under no model (:data:`~loopflow.cost.OTHER_MODELS`: its
cost is unknown, as the model was not recorded).

Schema 1 (loopflow 0.1) kept the index and the usage counters in the guild scope
(``message_index``, ``usage``), written once per changed server.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redbot.core import Config
from redbot.core.config import Group

from loopflow.chat.discussion import DEFAULT_MAX_ROUNDS
from loopflow.cost import OTHER_MODELS, MateUsage, UsageLedger
from loopflow.providers.base import Usage

SCHEMA_VERSION = 4
# Identifies this cog's data in Red's Config; never change it.
CONFIG_IDENTIFIER = 0x10F7_F10E
RECORDS = "records"
NOTES = "memory_notes"
MESSAGE_INDEX_LIMIT = 5_000  # entries per server; the oldest go first
CHAT_THREAD_LIMIT = 1_000  # [p]mate chat threads remembered per server; the oldest go first
WEBHOOK_LIMIT = 1_000  # the mates' webhooks remembered per server (one per channel)


def new_records() -> dict[str, Any]:
    """An empty :data:`RECORDS` document."""
    return {"index": {}, "usage": {}, "today": {}}


def pack_index(index: dict[str, str]) -> str | dict[str, str]:
    """The message index as stored since schema 4: one string, ``"id=entry;id=entry"``,
    oldest first. A JSON object of 5,000 keys costs Red's drivers (copy, key checks,
    encode, decode) several times what one string does (BENCHMARKS.md, "Saving"). An
    index with an entry the string cannot hold (a ``;`` or ``=``: no mate name has one)
    is kept as an object."""
    packed = ";".join(f"{key}={entry}" for key, entry in index.items())
    fits = packed.count(";") == len(index) - 1 and packed.count("=") == len(index)
    return packed if fits else dict(index)


def unpack_index(stored: str | dict[str, str]) -> dict[str, str]:
    """The inverse of :func:`pack_index`; an object (schema 3, or an index kept as one)
    comes back as it is."""
    if isinstance(stored, dict):
        return {str(key): str(entry) for key, entry in stored.items()}
    if not stored:
        return {}
    return dict(entry.split("=", 1) for entry in stored.split(";"))


def stored_records(records: dict[str, Any]) -> dict[str, Any]:
    """A records document as it is written: its index packed (:func:`pack_index`)."""
    return {**new_records(), **records, "index": pack_index(records.get("index") or {})}


def read_records(stored: dict[str, Any]) -> dict[str, Any]:
    """A records document as read back: its index a dict again (either form)."""
    return {**new_records(), **stored, "index": unpack_index(stored.get("index") or {})}


def group(parent: Config | Group, name: str) -> Group:
    """``parent``'s registered field ``name`` whose default is a dict (``mates``, ``bindings``,
    ``models``, ``threads``, ``memory``, ``prices``: see :func:`register`), as the
    :class:`~redbot.core.config.Group` Red makes of it; Red types attribute access as
    ``Group | Value``, this narrows it for ``get_raw``/``set_raw``/``clear_raw``.

    Raises :class:`TypeError` if ``name`` is not registered with a dict default."""
    child = getattr(parent, name)
    if not isinstance(child, Group):
        raise TypeError(f"Config field {name!r} is not registered as a group")
    return child


def register(config: Config) -> None:
    """Register every default of the layout above (Red needs them before any access)."""
    config.register_global(schema_version=0, prices={}, record_servers=[])
    config.register_guild(
        mates={},
        bindings={},
        models={},
        threads={},
        cooldown=0,
        discuss_max=DEFAULT_MAX_ROUNDS,
        limits={},
        webhook_hint_sent=False,
        webhooks=[],
    )
    config.register_channel(reset_point=0, memory={})
    # Two scalars, not one dict: Red's Config cannot merge a dict over a None default.
    config.register_user(dm_guild=0, dm_mate="", memory_optout=False)
    config.init_custom(NOTES, 3)
    config.register_custom(NOTES, facts=[])
    config.init_custom(RECORDS, 1)
    config.register_custom(RECORDS, **new_records())


async def migrate(
    config: Config, *, whole_file_writes: bool, server_config: Callable[[int], Config]
) -> None:
    """Bring stored data to :data:`SCHEMA_VERSION`; a second run changes nothing.

    ``whole_file_writes``: Red's JSON driver (the records go to a Config per server, made
    by ``server_config(guild id)``), else PostgreSQL (a row per server of :data:`RECORDS`).
    Each step writes what it moves before it deletes the source, so a crash midway loses
    nothing (the next start finishes the move).
    """
    version = await config.schema_version()
    if version < 2:
        await _move_records_out_of_guilds(config, whole_file_writes)
    if version < 3:
        await _usage_per_model_and_day(config, whole_file_writes)
    if whole_file_writes:
        await _records_to_server_files(config, server_config)
    else:
        await _records_to_rows(config, server_config)
    if version < SCHEMA_VERSION:
        await config.schema_version.set(SCHEMA_VERSION)


async def _records_to_server_files(config: Config, server_config: Callable[[int], Config]) -> None:
    """Schema 3 -> 4 on JSON: each server's document from the cog's file to its own."""
    every = await config.custom(RECORDS).all()
    if not every:
        return
    servers = {int(g) for g in await config.record_servers()}
    for key, records in every.items():
        if has_stored_records(records):
            server = server_config(int(key))
            server.register_global(records=new_records())
            await server.records.set(stored_records(read_records(records)))
            servers.add(int(key))
    await config.record_servers.set(sorted(servers))
    await config.custom(RECORDS).clear()  # one write; the cog's file is small again


async def _records_to_rows(config: Config, server_config: Callable[[int], Config]) -> None:
    """Back to a row per server (PostgreSQL), for records a JSON bot kept per server
    before ``redbot-setup convert`` brought them here."""
    servers = await config.record_servers()
    if not servers:
        return
    for guild_id in servers:
        server = server_config(int(guild_id))
        server.register_global(records=new_records())
        records = await server.records()
        if has_stored_records(records):
            await config.custom(RECORDS, str(guild_id)).set({**new_records(), **records})
            await server.clear_all()
    await config.record_servers.clear()


def has_stored_records(records: dict[str, Any]) -> bool:
    """Whether a records document holds anything worth storing."""
    return bool(records.get("index") or records.get("usage") or records.get("today"))


async def _move_records_out_of_guilds(config: Config, whole_file_writes: bool) -> None:
    """Schema 1 -> 2: the records first (so a crash midway loses nothing), then the guild
    scope without the old fields."""
    moved = {}
    for guild_id, data in (await config.all_guilds()).items():
        records = {"index": data.get("message_index") or {}, "usage": data.get("usage") or {}}
        if records["index"] or records["usage"]:
            moved[str(guild_id)] = records
    if whole_file_writes:
        every = await config.custom(RECORDS).all()
        await config.custom(RECORDS).set({**every, **moved})
    else:
        for key, records in moved.items():
            await config.custom(RECORDS, key).set(records)
    # One write for the whole guild scope, as Red's own Mod and Bank cogs do for theirs:
    # a write per server would rewrite the JSON file once per server.
    async with config._get_base_group(Config.GUILD).all() as guilds:
        for data in guilds.values():
            _drop_schema_1_fields(data)


def _drop_schema_1_fields(data: dict[str, Any]) -> None:
    """One server's guild data from schema 1 to 2, in place."""
    data.pop("message_index", None)
    data.pop("usage", None)
    if "threads" not in data:
        return
    # Schema 1's data deletion set an opener to 0 instead of removing the record.
    openers = {thread: opener for thread, opener in data["threads"].items() if opener}
    kept = sorted(openers, key=int)[-CHAT_THREAD_LIMIT:]
    for thread in openers.keys() - set(kept):
        data.get("bindings", {}).pop(thread, None)
    data["threads"] = {thread: openers[thread] for thread in kept}


def usage_from_counters(counters: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 -> 3 of one records document's ``usage``: ``{mate: {"input", "output"}}``
    -> ``{mate: MateUsage.to_dict()}``, the totals kept as an older total of no model.
    A mate already in the new layout is kept as it is."""
    converted: dict[str, Any] = {}
    for name, counter in counters.items():
        if isinstance(counter, dict) and set(counter) <= {"input", "output"}:
            total = Usage(int(counter.get("input", 0)), int(counter.get("output", 0)))
            converted[name] = MateUsage({OTHER_MODELS: UsageLedger.from_total(total)}).to_dict()
        else:
            converted[name] = counter
    return converted


async def _usage_per_model_and_day(config: Config, whole_file_writes: bool) -> None:
    """Schema 2 -> 3: every server's usage counters become ledgers (one write on JSON)."""
    every = await config.custom(RECORDS).all()
    changed = {
        key: {**records, "usage": usage_from_counters(records.get("usage") or {})}
        for key, records in every.items()
        if records.get("usage")
    }
    if not changed:
        return
    if whole_file_writes:
        await config.custom(RECORDS).set({**every, **changed})
    else:
        for key, records in changed.items():
            await config.custom(RECORDS, key).set(records)
