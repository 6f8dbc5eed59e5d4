"""`StatsStore` on Redis (single node or Cluster), shared by every worker and replica.

Key layout (prefix "gw" by default); the {hash tag} keeps each group in one cluster slot:

    gw:{dep:NAME}:s          hash  decayed live sums (see `_model`)       TTL stats_ttl_s
    gw:{dep:NAME}:c          hash  circuit counters (see `circuit`)       TTL stats_ttl_s
    gw:{dep:NAME}:cool       str   exists while the circuit cools down    TTL cooldown_s
    gw:{dep:NAME}:probe      str   the half-open probe slot               TTL probe_ttl_s
    gw:{dep:NAME}:q          hash  feedback Beta sums a, b, a:DOM, b:DOM   TTL quality_ttl_s
    gw:{budget:PIPE}:d:DAY   int   nano-dollars spent on UTC day DAY      TTL 2 days
    gw:{budget:PIPE}:m:MONTH int   nano-dollars spent in UTC month MONTH  TTL 32 days
    gw:{idx}:deps / :pipes   set   names seen, to enumerate on read       TTL 30 / 32 days
    gw:{TAG}:w:WRITER        str   the last write number of one writer applied in slot {TAG}
                                   (applied-once guard, see `_lua._ONCE`)  TTL 10 minutes
    gw:{view}:snap           str   the published snapshot of all the above (zlib'd JSON, base64)
    gw:{view}:lease          str   the replica publishing it         TTL max(4 refreshes, 2 s)

Every TTL is refreshed on write; a process re-adds a name to an index once a minute, not on every
write, and at once when a write script reports that it created the name's key (first write, or
Redis lost its data: FLUSHALL, a restart without persistence). Feedback records, learned-model logs and the dashboard's history: see `_redis_shared`.
Cluster mode: pass cluster=True or a redis+cluster:// URL.

`read_view` costs one script call per replica and refresh: the replica holding the lease reads
every deployment (two pipelined round trips, O(deployments)) and publishes the snapshot; the others
fetch it with the same call. So the read load on Redis grows with deployments + replicas, not with
their product (bench/redis_scale.py; docs/scaling.md).
"""

from __future__ import annotations

import asyncio
import base64
import math
import time
import uuid
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from gateway.selection.types import LiveStats
from gateway.stats import _lua
from gateway.stats._model import circuit_view, live_from
from gateway.stats._redis_shared import RedisSharedState
from gateway.stats._redis_spend import RedisSpend
from gateway.stats.base import ProbeAnswer, StatsConfig, StatsStore
from gateway.stats.budget import DAY_TTL_S, MONTH_TTL_S, periods
from gateway.stats.events import (
    NANOS_PER_USD, Outcome, Quality, SpendTotals, scoped_key, usd_to_nanos,
)

__all__ = ["RedisStatsStore"]

_SCRIPTS = {
    "record": _lua.RECORD, "probe": _lua.PROBE, "spend": _lua.SPEND, "feedback": _lua.FEEDBACK,
    "reserve": _lua.RESERVE, "settle": _lua.SETTLE, "take": _lua.TAKE, "view": _lua.VIEW,
    "checkpoint": _lua.CHECKPOINT, "history": _lua.HISTORY, "recent": _lua.RECENT, "rl_add": _lua.RL_ADD,
}
#: A process re-adds a name it writes to the index this often (the index TTL is days). A name whose
#: key a write script had to create (first write; Redis lost its data, whether or not its scripts
#: survived) is re-added at once, whatever the memo says.
_INDEX_REFRESH_S = 60.0
#: How long a writer's applied-once marker outlives its last write to a slot: a write whose reply
#: was lost is recognised when re-sent within this time (`_lua._ONCE`).
ONCE_TTL_S = _lua.ONCE_TTL_S
#: The shortest lease on publishing the snapshot: longer than reading 1000 deployments takes on a
#: busy machine, so that leadership does not pass around while the reads are slow.
_LEASE_MIN_S = 2.0
_CLUSTER_SCHEMES = {"redis+cluster://": "redis://", "rediss+cluster://": "rediss://"}

# One queued command: ("script", name, keys, args) or ("cmd", name, args).
_Op = tuple[Any, ...]


def _client(url: str, cluster: bool, timeout_s: float) -> Redis | RedisCluster:
    for scheme, plain in _CLUSTER_SCHEMES.items():
        if url.startswith(scheme):
            url, cluster = plain + url[len(scheme) :], True
    kw: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
    }
    return RedisCluster.from_url(url, **kw) if cluster else Redis.from_url(url, **kw)


def _float(v: Any) -> float:
    return float(v) if v is not None else 0.0


def _until(ts: float, pttl: int) -> float:
    """When a key with `pttl` ms left at `ts` expires (0: absent; inf: no expiry).

    Redis answers 0 for a key in its last millisecond, which EXISTS (and so the scripts) still
    sees: count it as alive for that millisecond, or a reader calls a circuit half-open that the
    probe script still finds cooling."""
    pttl = int(pttl)
    return ts + max(pttl, 1) / 1000.0 if pttl >= 0 else (math.inf if pttl == -1 else 0.0)


class RedisStatsStore(RedisSharedState, RedisSpend, StatsStore):
    def __init__(
        self,
        url: str,
        key_prefix: str = "gw",
        cluster: bool = False,
        *,
        config: StatsConfig | None = None,
        timeout_s: float = 1.0,
        max_in_flight: int = 32,
        snapshot: bool = True,
        index_refresh_s: float = _INDEX_REFRESH_S,
    ) -> None:
        self.config = config or StatsConfig()
        self.prefix = key_prefix
        #: This process, as the leases and learned-model logs name it.
        self.replica = uuid.uuid4().hex[:12]
        # False, with index_refresh_s=0: every replica reads every deployment on every refresh and
        # re-adds its names on every write (what bench/redis_scale.py calls "before").
        self.snapshot = snapshot
        self._index_refresh_s = index_refresh_s  # 0: on every write, as before
        self._indexed: dict[tuple[str, str], float] = {}
        self._redis = _client(url, cluster, timeout_s)
        self._sha: dict[str, str] = {}
        self._script_lock = asyncio.Lock()
        # The client's pools raise rather than wait when exhausted; queue here instead.
        self._gate = asyncio.Semaphore(max_in_flight)

    # -- keys -------------------------------------------------------------------------------------

    def dep_keys(self, dep: str) -> tuple[str, str, str, str, str]:
        """(stats, circuit, cool, probe, quality) keys of one deployment, all in one slot."""
        base = f"{self.prefix}:{{dep:{dep}}}:"
        return base + "s", base + "c", base + "cool", base + "probe", base + "q"

    def marker_key(self, key: str, writer: str) -> str:
        """The applied-once marker of `writer` in the slot of `key` (same hash tag)."""
        return key[: key.index("}") + 1] + ":w:" + writer

    def _index_key(self, kind: str) -> str:
        return f"{self.prefix}:{{idx}}:{kind}"

    def view_keys(self) -> tuple[str, str]:
        """(snapshot, lease): one slot, touched once per replica and refresh."""
        base = f"{self.prefix}:{{view}}:"
        return base + "snap", base + "lease"

    # -- plumbing ---------------------------------------------------------------------------------

    async def _load_scripts(self, stale: dict[str, str] | None) -> None:
        # On a cluster SCRIPT LOAD goes to every primary; redo it after NOSCRIPT (restart, failover).
        async with self._script_lock:
            if self._sha and self._sha is not stale:
                return  # a concurrent caller just loaded them
            sha = {name: await self._redis.script_load(src) for name, src in _SCRIPTS.items()}
            self._sha = sha

    async def _run(self, ops: Sequence[_Op]) -> list[Any]:
        async with self._gate:
            try:
                return await self._run_pipeline(ops)
            except BaseException:
                self._forget_index_adds(ops)
                raise

    def _forget_index_adds(self, ops: Sequence[_Op]) -> None:
        # The names this call added to an index may not be there: the memo must not say they are.
        for op in ops:
            if op[0] == "cmd" and op[1] == "SADD":
                key, *names = op[2]
                kind = key.rsplit(":", 1)[1]
                for n in names:
                    self._indexed.pop((kind, n), None)

    async def _members(self, kind: str) -> list[str]:
        async with self._gate:
            return sorted(await self._redis.smembers(self._index_key(kind)))

    async def _run_pipeline(self, ops: Sequence[_Op]) -> list[Any]:
        """Send `ops` in ONE non-transactional pipeline; re-send only the NOSCRIPT failures."""
        if not self._sha:
            await self._load_scripts(None)
        results: list[Any] = [None] * len(ops)
        todo = list(range(len(ops)))
        for attempt in range(2):
            sha = self._sha
            pipe = self._redis.pipeline(transaction=False)
            for i in todo:
                op = ops[i]
                if op[0] == "script":
                    _, name, keys, args = op
                    # execute_command: the cluster pipeline blocks .evalsha() but routes EVALSHA by key.
                    pipe.execute_command("EVALSHA", sha[name], len(keys), *keys, *args)
                else:
                    pipe.execute_command(op[1], *op[2])
            out = await pipe.execute(raise_on_error=False)
            retry = []
            for i, res in zip(todo, out, strict=True):
                if isinstance(res, NoScriptError) and attempt == 0:
                    retry.append(i)
                elif isinstance(res, Exception):
                    raise res
                else:
                    results[i] = res
            if not retry:
                break
            self._indexed.clear()  # NOSCRIPT: Redis restarted, perhaps empty; re-add index names
            await self._load_scripts(sha)
            todo = retry
        return results

    # -- StatsStore -------------------------------------------------------------------------------

    async def record_many(self, outcomes: Sequence[Outcome], *, once: tuple[str, int] | None = None) -> None:
        if not outcomes:
            return
        writer, seq = once if once is not None else ("-", "")
        cfg = self.config
        by_dep: dict[str, list[Outcome]] = {}
        spend: dict[tuple[str, str, str], int] = {}
        for o in outcomes:
            by_dep.setdefault(o.deployment, []).append(o)
            if o.pipeline is not None and o.cost_usd:
                key = (o.pipeline, *periods(o.ts))
                spend[key] = spend.get(key, 0) + usd_to_nanos(o.cost_usd)
        head = (
            cfg.half_life_s,
            cfg.min_gen_ms,
            int(cfg.stats_ttl_s * 1000),
            cfg.failure_threshold,
            cfg.error_rate_threshold,
            cfg.min_samples,
            max(1, int(cfg.cooldown_s * 1000)),
            cfg.stale_after_s,
            cfg.stale_latencies,
            seq,
            ONCE_TTL_S,
        )
        ops: list[_Op] = []
        # One script call per deployment: all its keys share a slot, so batches group by slot.
        for dep, items in by_dep.items():
            args: list[Any] = list(head)
            for o in sorted(items, key=lambda o: o.ts):
                ttft = "" if o.ttft_ms is None else repr(float(o.ttft_ms))
                args += [repr(o.ts), o.status, repr(float(o.latency_ms)), ttft, o.output_tokens, repr(float(o.cost_usd))]
            keys = self.dep_keys(dep)
            ops.append(("script", "record", (*keys[:4], self.marker_key(keys[0], writer)), args))
        spent = list(spend.items())
        for (pipe_name, day, month), nanos in spent:
            keys = self.budget_keys(pipe_name, day, month)
            args = [nanos, DAY_TTL_S, MONTH_TTL_S, seq, ONCE_TTL_S]
            ops.append(("script", "spend", (*keys, self.marker_key(keys[0], writer)), args))
        ops += self._index_ops("deps", by_dep.keys(), int(cfg.quality_ttl_s))
        ops += self._index_ops("pipes", {k[0] for k in spend}, MONTH_TTL_S)
        res = await self._run(ops)
        created = [dep for dep, r in zip(by_dep, res, strict=False) if int(r[0]) == 1]
        base = len(by_dep)
        pipes = {k[0] for (k, nanos), r in zip(spent, res[base:], strict=False) if int(r[1]) == nanos}
        await self._reindex(deps=created, pipes=pipes)

    async def _reindex(self, deps: Iterable[str] = (), pipes: Iterable[str] = ()) -> None:
        """Add names whose keys a write had to create, whatever the memo says: after Redis lost its
        data the index is rebuilt by the next write of each name (one more round trip, only then)."""
        for n in deps:
            self._indexed.pop(("deps", n), None)
        for n in pipes:
            self._indexed.pop(("pipes", n), None)
        ops = self._index_ops("deps", deps, int(self.config.quality_ttl_s))
        ops += self._index_ops("pipes", pipes, MONTH_TTL_S)
        if ops:
            await self._run(ops)

    def _index_ops(self, kind: str, names: Iterable[str], ttl_s: int) -> list[_Op]:
        # Every write used to SADD its names; now a process adds a name once a minute, so the index
        # (one slot) sees almost no writes in steady state.
        now = time.monotonic()
        memo = self._indexed
        fresh = [n for n in names if now - memo.get((kind, n), -math.inf) >= self._index_refresh_s]
        if not fresh:
            return []
        for n in fresh:
            memo[(kind, n)] = now
        key = self._index_key(kind)
        return [("cmd", "SADD", [key, *fresh]), ("cmd", "EXPIRE", [key, ttl_s])]

    async def _read_raw(self, now: float, spend: bool) -> dict[str, Any]:
        """Every deployment's hashes and circuit deadlines (and every pipeline's spend), as stored:
        two round trips whatever the catalog's size."""
        async with self._gate:
            pipe = self._redis.pipeline(transaction=False)
            pipe.smembers(self._index_key("deps"))
            pipe.smembers(self._index_key("pipes"))
            deps_set, pipes_set = await pipe.execute()
        deps, pipes = sorted(deps_set), sorted(pipes_set) if spend else []
        day, month = periods(now)
        ops: list[_Op] = []
        for dep in deps:
            s, c, cool, probe, q = self.dep_keys(dep)
            ops += [("cmd", "HGETALL", [s]), ("cmd", "HGETALL", [c]), ("cmd", "PTTL", [cool]),
                    ("cmd", "PTTL", [probe]), ("cmd", "HGETALL", [q])]
        for p in pipes:
            ops += [("cmd", "GET", [k]) for k in self.budget_keys(p, day, month)]
        res = await self._run(ops) if ops else []
        raw_deps = {}
        for i, dep in enumerate(deps):
            s, c, cool, probe, q = res[5 * i : 5 * i + 5]
            if s or q or c:  # else expired; the index entry outlives it
                raw_deps[dep] = [s, c, _until(now, cool), _until(now, probe), q]
        base = 5 * len(deps)
        raw_spend = {p: [int(res[base + 2 * i] or 0), int(res[base + 2 * i + 1] or 0)] for i, p in enumerate(pipes)}
        return {"ts": now, "day": day, "deps": raw_deps, "spend": raw_spend}

    def _live_of(self, raw: Mapping[str, Any], now: float) -> dict[str, LiveStats]:
        out: dict[str, LiveStats] = {}
        for dep, (s, c, cool_until, probe_until, q) in raw["deps"].items():
            circuit = circuit_view(_float(c.get("x")) >= 1, cool_until > now, probe_until > now)
            h = {k: float(v) for k, v in s.items()}
            out[dep] = live_from(
                h, now, self.config.half_life_s, circuit, self._quality(q),
                self.config.stale_after_s, self.config.stale_latencies,
            )  # fmt: skip
        return out

    @staticmethod
    def _spend_of(raw: Mapping[str, Any]) -> dict[str, SpendTotals]:
        return {p: SpendTotals(d / NANOS_PER_USD, m / NANOS_PER_USD) for p, (d, m) in raw["spend"].items()}

    async def read_stats(self, now: float | None = None) -> dict[str, LiveStats]:
        now = time.time() if now is None else now
        return self._live_of(await self._read_raw(now, spend=False), now)

    async def read_view(
        self, now: float | None = None, *, every_s: float = 0.25,
    ) -> tuple[dict[str, LiveStats], dict[str, SpendTotals]]:
        """Live figures and spend from the published snapshot (one script call), or, for the one
        replica holding the lease, read afresh and published.

        The lease outlasts a slow read (at least `_LEASE_MIN_S`); when its holder dies, another
        replica takes it over within that time, and meanwhile the others keep using the last
        snapshot (its figures decayed to now). Only a snapshot older than two leases (nobody has
        published for that long) makes a replica read everything itself."""
        now = time.time() if now is None else now
        lead = 0
        if self.snapshot:
            snap_key, lease_key = self.view_keys()
            lease_s = max(4 * every_s, _LEASE_MIN_S)
            lease_ms = int(lease_s * 1000)
            lead, blob = (await self._run([("script", "view", (snap_key, lease_key), [self.replica, lease_ms])]))[0]
            if not int(lead) and blob:
                raw = orjson.loads(zlib.decompress(base64.b64decode(blob)))
                if now - raw["ts"] <= 2 * lease_s and raw["day"] == periods(now)[0]:
                    return self._live_of(raw, now), self._spend_of(raw)
        raw = await self._read_raw(now, spend=True)
        if self.snapshot and int(lead):
            # Deadlines (cool-down, probe) are absolute: no float infinities in JSON.
            for entry in raw["deps"].values():
                entry[2], entry[3] = min(entry[2], now + 86400.0), min(entry[3], now + 86400.0)
            # Compressed: every replica fetches it on every refresh (~15-20 KB at 100 deployments).
            blob = base64.b64encode(zlib.compress(orjson.dumps(raw), 1)).decode()
            await self._run([("cmd", "SET", [snap_key, blob, "PX", 2 * lease_ms])])
        return self._live_of(raw, now), self._spend_of(raw)

    @staticmethod
    def _quality(q: Mapping[str, str]) -> dict[str | None, Quality]:
        out: dict[str | None, Quality] = {}
        for field, v in q.items():
            if field[0] != "a":
                continue
            domain = field[2:] if field.startswith("a:") else None
            other = "b" + field[1:]
            out[domain] = Quality(float(v), _float(q.get(other)))
        return out

    async def try_acquire_probe(self, deployment: str) -> bool:
        return await self.acquire_probe(deployment) != "refused"

    async def acquire_probe(self, deployment: str) -> ProbeAnswer:
        _, c, cool, probe, _ = self.dep_keys(deployment)
        ttl_ms = max(1, int(self.config.probe_ttl_s * 1000))
        token = uuid.uuid4().hex
        (res,) = await self._run([("script", "probe", (c, cool, probe), [ttl_ms, token])])
        res = int(res)
        return "probe" if res == _lua.PROBE_GRANTED else "closed" if res == _lua.PROBE_CLOSED else "refused"

    async def add_feedback(
        self, deployment: str, domain: str | None, score: float, scope: str | None = None,
        *, once: tuple[str, int] | None = None,
    ) -> None:
        score = min(max(float(score), 0.0), 1.0)
        q = self.dep_keys(deployment)[4]
        if scope is None:
            domain_key, overall_key = domain or "", ""
        else:
            domain_key = scoped_key(scope, domain) if domain else ""
            overall_key = scoped_key(scope, None)
        writer, seq = once if once is not None else ("-", "")
        args = [repr(score), repr(1.0 - score), int(self.config.quality_ttl_s * 1000), domain_key, overall_key,
                seq, ONCE_TTL_S, self.config.max_posteriors]
        ops: list[_Op] = [("script", "feedback", (q, self.marker_key(q, writer)), args)]
        ops += self._index_ops("deps", [deployment], int(self.config.quality_ttl_s))
        if int((await self._run(ops))[0]) == 1:
            await self._reindex(deps=[deployment])

    async def read_quality(self) -> dict[str, Mapping[str | None, Quality]]:
        deps = await self._members("deps")
        res = await self._run([("cmd", "HGETALL", [self.dep_keys(d)[4]]) for d in deps]) if deps else []
        return {d: self._quality(q) for d, q in zip(deps, res, strict=True) if q}

    async def ping(self) -> bool:
        try:
            async with self._gate:
                return bool(await self._redis.ping())
        except Exception:  # noqa: BLE001 - a health probe reports, it never raises
            return False

    async def close(self) -> None:
        await self._redis.aclose()

    @property
    def client(self) -> Redis | RedisCluster:
        """The underlying client (tests and ops tooling)."""
        return self._redis
