"""The Redis store's shared state beyond live figures: feedback records, learned-model logs and
the dashboard's fleet-wide history (see docs/scaling.md for what each costs and how stale it is).

Key layout (prefix "gw" by default); each hash tag spreads its keys over the cluster's slots:

    gw:{rq:REQUEST_ID}        str     a served request's feedback record (JSON), '-' once consumed
                                      TTL request_ttl_s
    gw:{ql:LINEAGE}:log       stream  deltas of one learned model, one entry per replica and sync
    gw:{ql:LINEAGE}:ck        hash    id, blob, prev: the sum of the log up to id  TTL learning_ttl_s
    gw:{hist:BLOCK}:s         hash    "<bucket start>|<field>" -> amount, one block per 300 s
    gw:{hist:recent}:d        list    recent decisions (JSON), newest last         TTL history_ttl_s
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from gateway.stats._lua import ONCE_TTL_S
from gateway.stats.events import LearningEntry, RequestRecord, Taken, entry_order

__all__ = ["BLOCK_S", "FIELD_SEP", "RedisSharedState"]

#: Seconds of history per Redis hash: a 15-minute window reads 4 keys.
BLOCK_S = 300
#: Separates a bucket's start from the field name in a history hash.
FIELD_SEP = "|"


class RedisSharedState:
    """Mixed into `RedisStatsStore`, which provides `prefix`, `config` and `_run(ops)`."""

    prefix: str
    config: Any

    async def _run(self, ops: Sequence[tuple[Any, ...]]) -> list[Any]:
        raise NotImplementedError

    def marker_key(self, key: str, writer: str) -> str:
        raise NotImplementedError

    # -- feedback records -------------------------------------------------------------------------

    def request_key(self, request_id: str) -> str:
        return f"{self.prefix}:{{rq:{request_id}}}"

    async def put_requests(self, records: Sequence[RequestRecord]) -> None:
        if not records:
            return
        ttl_ms = max(1, int(self.config.request_ttl_s * 1000))
        ops = []
        for r in records:
            value = orjson.dumps({"d": r.deployment, "o": r.domain, "p": r.pipeline, "u": r.principal,
                                  "c": r.cost_usd, "f": r.features}).decode()
            # NX: a consumed record's tombstone must survive a re-sent batch.
            ops.append(("cmd", "SET", [self.request_key(r.request_id), value, "NX", "PX", ttl_ms]))
        await self._run(ops)

    async def take_request(self, request_id: str, principal: str | None) -> Taken:
        (res,) = await self._run([("script", "take", (self.request_key(request_id),), [principal or ""])])
        status = int(res[0])
        if status == 2:
            return Taken("denied")
        if status == 3:
            return Taken("missing", consumed=True)
        if status != 1:
            return Taken("missing")
        v = orjson.loads(res[1])
        return Taken("ok", RequestRecord(request_id, v["d"], v["o"], v["p"], v["u"], float(v["c"]), v["f"]))

    async def drop_request(self, request_id: str) -> None:
        ttl_ms = max(1, int(self.config.request_ttl_s * 1000))
        await self._run([("cmd", "SET", [self.request_key(request_id), "-", "PX", ttl_ms])])

    # -- learned models ---------------------------------------------------------------------------

    def learning_keys(self, lineage: str) -> tuple[str, str]:
        """(log stream, checkpoint hash) of one learned model; one slot."""
        base = f"{self.prefix}:{{ql:{lineage}}}:"
        return base + "log", base + "ck"

    async def sync_learning(
        self, lineage: str, origin: str, blob: str | None, after: str | None, *, limit: int = 1000,
    ) -> tuple[list[LearningEntry], str | None, str | None]:
        log, ck = self.learning_keys(lineage)
        ttl_ms = max(1, int(self.config.learning_ttl_s * 1000))
        ops: list[tuple[Any, ...]] = []
        if blob is not None:
            ops += [("cmd", "XADD", [log, "*", "o", origin, "b", blob]), ("cmd", "PEXPIRE", [log, ttl_ms])]
        start = "-" if after is None else "(" + after
        ops += [("cmd", "XRANGE", [log, start, "+", "COUNT", limit]), ("cmd", "HMGET", [ck, "prev", "id"])]
        res = await self._run(ops)
        entries = [LearningEntry(eid, fields.get("o", ""), fields.get("b", "")) for eid, fields in res[-2]]
        floor, checkpoint = res[-1]
        return entries, floor, checkpoint

    async def save_learning_checkpoint(self, lineage: str, upto: str, blob: str) -> bool:
        log, ck = self.learning_keys(lineage)
        ms, seq = entry_order(upto)
        ttl_ms = max(1, int(self.config.learning_ttl_s * 1000))
        (res,) = await self._run([("script", "checkpoint", (ck, log), [ms, seq, upto, blob, ttl_ms])])
        return bool(res)

    async def load_learning_checkpoint(self, lineage: str) -> tuple[str, str] | None:
        _, ck = self.learning_keys(lineage)
        (res,) = await self._run([("cmd", "HMGET", [ck, "id", "blob"])])
        return None if not res or res[0] is None else (res[0], res[1] or "")

    # -- the dashboard's history ------------------------------------------------------------------

    def history_key(self, block: int | str) -> str:
        return f"{self.prefix}:{{hist:{block}}}:" + ("d" if block == "recent" else "s")

    async def add_history(
        self, buckets: Mapping[int, Mapping[str, float]], decisions: Sequence[str], *, keep: int,
        once: tuple[str, int] | None = None,
    ) -> None:
        writer, seq = once if once is not None else ("-", "")
        ttl_ms = max(1, int(self.config.history_ttl_s * 1000))
        blocks: dict[int, list[Any]] = {}
        for start, fields in buckets.items():
            args = blocks.setdefault(start // BLOCK_S, [])
            for name, amount in fields.items():
                args += [f"{start}{FIELD_SEP}{name}", repr(float(amount))]
        ops: list[tuple[Any, ...]] = []
        for block, args in blocks.items():
            if args:
                key = self.history_key(block)
                ops.append(("script", "history", (key, self.marker_key(key, writer)), [ttl_ms, seq, ONCE_TTL_S, *args]))
        if decisions:
            key = self.history_key("recent")
            ops.append(("script", "recent", (key, self.marker_key(key, writer)), [keep, ttl_ms, seq, ONCE_TTL_S, *decisions]))
        if ops:
            await self._run(ops)

    async def read_history(self, since: int, keep: int) -> tuple[dict[int, dict[str, float]], list[str]]:
        blocks = range(since // BLOCK_S, int(time.time()) // BLOCK_S + 1)
        ops: list[tuple[Any, ...]] = [("cmd", "HGETALL", [self.history_key(b)]) for b in blocks]
        ops.append(("cmd", "LRANGE", [self.history_key("recent"), -keep, -1] if keep > 0 else
                    [self.history_key("recent"), 1, 0]))
        res = await self._run(ops)
        buckets: dict[int, dict[str, float]] = {}
        for flat in res[:-1]:
            for field, value in flat.items():
                start_s, _, name = field.partition(FIELD_SEP)
                start = int(start_s)
                if start >= since:
                    buckets.setdefault(start, {})[name] = float(value)
        return buckets, list(res[-1])
