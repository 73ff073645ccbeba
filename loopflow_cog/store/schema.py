"""What the cog stores in Red's Config, its version, and the migrations between versions.

Schema 3, the same on Red's JSON and PostgreSQL backends:

- global: ``schema_version``, ``prices`` (model -> ``Prices.to_dict()``, the owner's
  ``[p]mateset price`` overrides);
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
- custom group :data:`RECORDS`, one document per guild id: ``index`` (str(message id) ->
  ``"mate"`` or ``"mate:answered message id"``, at most :data:`MESSAGE_INDEX_LIMIT`) and
  ``usage`` (mate -> ``MateUsage.to_dict()``: per model, per UTC day) and, in a server
  with limits, ``today`` (``DayCounts.to_dict()``: today's tokens per member), written in
  batches (records.py).

Schema 2 kept ``usage`` as mate -> ``{"input": int, "output": int}``: those totals become
the ``older`` part of one ledger under no model (:data:`~loopflow.cost.OTHER_MODELS`: its
cost is unknown, as the model was not recorded).

Schema 1 (loopflow 0.1) kept the index and the usage counters in the guild scope
(``message_index``, ``usage``), written once per changed server.
"""

from __future__ import annotations

from typing import Any

from redbot.core import Config

from loopflow.chat.discussion import DEFAULT_MAX_ROUNDS
from loopflow.cost import OTHER_MODELS, MateUsage, UsageLedger
from loopflow.providers.base import Usage

SCHEMA_VERSION = 3
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


def register(config: Config) -> None:
    """Register every default of the layout above (Red needs them before any access)."""
    config.register_global(schema_version=0, prices={})
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


async def migrate(config: Config, *, whole_file_writes: bool) -> None:
    """Bring stored data to :data:`SCHEMA_VERSION`; a second run changes nothing.

    ``whole_file_writes`` as for :class:`~.records.Records`: one write for all servers'
    records (JSON), or one per server (PostgreSQL).
    """
    version = await config.schema_version()
    if version < 2:
        await _move_records_out_of_guilds(config, whole_file_writes)
    if version < 3:
        await _usage_per_model_and_day(config, whole_file_writes)
    if version < SCHEMA_VERSION:
        await config.schema_version.set(SCHEMA_VERSION)


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
