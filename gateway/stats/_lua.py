"""Lua scripts of the Redis backend. Each touches the keys of ONE hash tag, so it runs in one slot.

`RECORD` is the Lua twin of `_model.apply_outcome` + `circuit.circuit_step`: keep them in step
(the shared contract suite runs the same scenarios against both backends).
Numbers are written with %.17g so a double survives the round trip through a hash field.
"""

from __future__ import annotations

__all__ = [
    "CHECKPOINT", "FEEDBACK", "ONCE_TTL_S", "HISTORY", "PROBE", "PROBE_CLOSED", "PROBE_GRANTED", "PROBE_REFUSED", "RECENT",
    "RECORD", "RESERVE", "RL_ADD", "SETTLE", "SPEND", "TAKE", "VIEW",
]

# Writes that add up (INCRBY, HINCRBYFLOAT, EWMA sums) must be applied once even when their reply
# is lost and they are sent again (a stall longer than the client's socket timeout: redis-py and
# the writers' own retries re-send them). Each writer (one per process and role) numbers its writes
# in the order it sends them and keeps re-sending a failed one, under the same number, before
# anything newer; a script first checks the writer's marker key in its own slot
# (`<prefix>:{tag}:w:<writer>`, the last number applied there) and applies only a higher number.
# ARGV `seq` '' skips the check (a caller that does not retry). The marker lives `ttl` seconds
# after the writer's last write to that slot, so a re-send is recognised for that long.
ONCE_TTL_S = 600
_ONCE = r"""
local function first_time(key, seq, ttl)
  if seq == '' then return true end
  local last = tonumber(redis.call('GET', key) or '-1')
  if tonumber(seq) <= last then return false end
  redis.call('SET', key, seq, 'EX', ttl)
  return true
end
"""

# KEYS: stats hash, circuit hash, cool key, probe key, writer marker.
# ARGV: half_life_s, min_gen_ms, ttl_ms, failure_threshold, error_rate_threshold, min_samples,
#       cooldown_ms, stale_after_s, stale_latencies, seq|'', marker ttl s, then 6 per outcome
#       (sorted by ts): ts, status, latency_ms, ttft_ms|'', output_tokens, cost_usd.
# Returns {created, transitions...}: created is 1 when the stats hash did not exist (the name must
# be in the index again: first write, or Redis lost its data), -1 when this write was applied
# before (nothing done); then the circuit transitions, in order (trip, reopen, close, release: as
# `circuit.Transition`).
RECORD = _ONCE + r"""
if not first_time(KEYS[5], ARGV[10], ARGV[11]) then return {-1} end
local function load(key)
  local flat = redis.call('HGETALL', key)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = tonumber(flat[i + 1]) end
  return h
end
local function save(key, h, ttl_ms)
  local args = {}
  for k, v in pairs(h) do
    args[#args + 1] = k
    args[#args + 1] = string.format('%.17g', v)
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
  redis.call('PEXPIRE', key, ttl_ms)
end
local function add(h, k, v) h[k] = (h[k] or 0) + v end
local SERVER = {rate_limit = true, server_error = true, timeout = true, connection = true}
local CLIENT = {client_error = true, context_window = true, auth = true, cancelled = true}

local hl, min_gen, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fail_n, thr, min_s = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local cool_ms, stale_s, stale_l = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local h, c = load(KEYS[1]), load(KEYS[2])
local cooling = redis.call('EXISTS', KEYS[3]) == 1
local events = {0}
if next(h) == nil then events[1] = 1 end

for i = 12, #ARGV, 6 do
  local ts, status, lat = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  local ttft, tok, cost = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local w, last = 1, h['t']
  if last == nil or ts >= last then
    if last ~= nil and ts > last then
      local k = 2 ^ (-(ts - last) / hl)
      local age, okw = ts - last, h['ok'] or 0
      if age >= stale_s and (okw <= 0 or age * 1000 >= stale_l * (h['lat'] or 0) / okw) then
        for name, _ in pairs(h) do h[name] = 0 end
      else
        for name, v in pairs(h) do if name ~= 't' then h[name] = v * k end end
      end
    end
    h['t'] = ts
  else
    w = 2 ^ (-(last - ts) / hl)
  end
  add(h, 'n', w)
  if status ~= 'ok' then
    add(h, 'e:' .. status, w)
    if SERVER[status] then add(h, 'f', w) end
  else
    add(h, 'ok', w); add(h, 'lat', w * lat); add(h, 'tok', w * tok); add(h, 'cost', w * cost)
    if ttft then
      add(h, 'tw', w); add(h, 'tt', w * ttft)
      local gen = lat - ttft
      if gen >= min_gen and tok > 1 then add(h, 'gt', w * tok); add(h, 'gm', w * gen) end
    end
  end

  local fail = SERVER[status]
  if fail or status == 'ok' then
    local rt, cw = c['rt'], 1
    local in_order = rt == nil or ts >= rt
    if in_order then
      local k = 1
      if rt ~= nil then k = 2 ^ (-(ts - rt) / hl) end
      c['rn'] = (c['rn'] or 0) * k; c['rf'] = (c['rf'] or 0) * k; c['rt'] = ts
    else
      cw = 2 ^ (-(rt - ts) / hl)
    end
    add(c, 'rn', cw)
    if fail then add(c, 'c', 1); add(c, 'rf', cw) elseif in_order then c['c'] = 0 end
    local step = nil
    if (c['x'] or 0) >= 1 then
      if not cooling then
        c['c'] = 0; c['rn'] = 0; c['rf'] = 0
        if fail then step = 'reopen' else c['x'] = 0; step = 'close' end
      end
    elseif fail and (c['c'] >= fail_n or (c['rn'] >= min_s and c['rf'] / c['rn'] > thr)) then
      c['c'] = 0; c['rn'] = 0; c['rf'] = 0; c['x'] = 1; step = 'trip'
    end
    if step == 'trip' or step == 'reopen' then
      redis.call('SET', KEYS[3], '1', 'PX', cool_ms)
      cooling = true
    end
    if step then
      redis.call('DEL', KEYS[4])
      events[#events + 1] = step
    end
  elseif CLIENT[status] and (c['x'] or 0) >= 1 and not cooling then
    -- circuit._release: half-open, and this outcome says nothing; the next request probes.
    redis.call('DEL', KEYS[4])
    events[#events + 1] = 'release'
  end
end
save(KEYS[1], h, ttl)
save(KEYS[2], c, ttl)
return events
"""

#: PROBE's answers: cooling down or another caller's probe is out; this caller probes; the circuit
#: is closed (no probe needed: whoever asked may send, and may stop treating it as half-open).
PROBE_REFUSED, PROBE_GRANTED, PROBE_CLOSED = 0, 1, 2

# KEYS: circuit hash, cool key, probe key. ARGV: probe_ttl_ms, token. Returns PROBE_REFUSED,
# PROBE_GRANTED or PROBE_CLOSED.
# The slot holds the caller's token: redis-py re-sends a command whose reply timed out, and the
# re-sent call must get the slot its first run took, not find it taken.
PROBE = r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'x') or '0') < 1 then return 2 end
if redis.call('SET', KEYS[3], ARGV[2], 'NX', 'PX', ARGV[1]) then return 1 end
if redis.call('GET', KEYS[3]) == ARGV[2] then return 1 end
return 0
"""

# KEYS: day key, month key, writer marker. ARGV: nano-dollars, day ttl s, month ttl s, seq|'',
# marker ttl s. Returns {day, month} (as they are, when this write was applied before).
SPEND = _ONCE + r"""
if not first_time(KEYS[3], ARGV[4], ARGV[5]) then
  return {tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local d = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local m = redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {d, m}
"""

# KEYS: quality hash, writer marker. ARGV: score, 1 - score, ttl_ms, domain key|'', overall key|'',
# seq|'', marker ttl s, max posteriors. Beta posterior sums: 'a'/'b' overall (or 'a:<overall key>'
# for a pipeline's scope), and 'a:<domain key>'/'b:<domain key>', a new one only while the hash
# holds fewer than max posteriors (two fields each; `StatsConfig.max_posteriors`). Returns 1 when
# the hash was created (the name must be in the index again), else 0.
FEEDBACK = _ONCE + r"""
if not first_time(KEYS[2], ARGV[6], ARGV[7]) then return 0 end
local created = redis.call('EXISTS', KEYS[1]) == 0
if ARGV[5] == '' then
  redis.call('HINCRBYFLOAT', KEYS[1], 'a', ARGV[1])
  redis.call('HINCRBYFLOAT', KEYS[1], 'b', ARGV[2])
else
  redis.call('HINCRBYFLOAT', KEYS[1], 'a:' .. ARGV[5], ARGV[1])
  redis.call('HINCRBYFLOAT', KEYS[1], 'b:' .. ARGV[5], ARGV[2])
end
if ARGV[4] ~= '' and (redis.call('HEXISTS', KEYS[1], 'a:' .. ARGV[4]) == 1
                      or redis.call('HLEN', KEYS[1]) < 2 * tonumber(ARGV[8])) then
  redis.call('HINCRBYFLOAT', KEYS[1], 'a:' .. ARGV[4], ARGV[1])
  redis.call('HINCRBYFLOAT', KEYS[1], 'b:' .. ARGV[4], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if created then return 1 end
return 0
"""

# Budget reservations of one pipeline: a hash (reservation id -> nano-dollars, plus '_total') and
# a sorted set (reservation id by expiry, ms) so a reservation whose replica died frees itself.
# KEYS: day key, month key, reservation hash, expiry zset.
# ARGV: now_ms, id, nanos, day limit nanos (-1: none), month limit nanos (-1: none), expiry_ms, ttl_s.
# Returns {granted 0/1, day, month, reserved total}. A re-sent call (its reply was lost) finds its
# hold in place and answers granted without holding it twice.
RESERVE = r"""
local now = tonumber(ARGV[1])
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
for _, id in ipairs(stale) do
  local amt = tonumber(redis.call('HGET', KEYS[3], id) or '0')
  redis.call('HDEL', KEYS[3], id)
  redis.call('HINCRBY', KEYS[3], '_total', -amt)
end
if #stale > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now) end
local held = tonumber(redis.call('HGET', KEYS[3], '_total') or '0')
local d = tonumber(redis.call('GET', KEYS[1]) or '0')
local m = tonumber(redis.call('GET', KEYS[2]) or '0')
local n, dl, ml = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return {1, d, m, held} end
if (dl >= 0 and d + held + n > dl) or (ml >= 0 and m + held + n > ml) then
  return {0, d, m, held}
end
redis.call('HSET', KEYS[3], ARGV[2], n)
redis.call('HINCRBY', KEYS[3], '_total', n)
redis.call('ZADD', KEYS[4], ARGV[6], ARGV[2])
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('EXPIRE', KEYS[4], ARGV[7])
return {1, d, m, held + n}
"""

# KEYS: day key, month key, reservation hash, expiry zset, writer marker.
# ARGV: id, actual nano-dollars, day ttl s, month ttl s, seq|'', marker ttl s. Returns {day, month}.
SETTLE = _ONCE + r"""
if not first_time(KEYS[5], ARGV[5], ARGV[6]) then
  return {tonumber(redis.call('GET', KEYS[1]) or '0'), tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local amt = redis.call('HGET', KEYS[3], ARGV[1])
if amt then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('HINCRBY', KEYS[3], '_total', -tonumber(amt))
  redis.call('ZREM', KEYS[4], ARGV[1])
end
local d = redis.call('INCRBY', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local m = redis.call('INCRBY', KEYS[2], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {d, m}
"""

# -- shared state beyond the live figures (docs/scaling.md) ---------------------------------------

# A feedback record: a JSON object whose "u" is the key that made the request (null: none).
# Consumed records become the tombstone '-' (same TTL), so a re-sent batch cannot bring them back.
# KEYS: record key. ARGV: principal ('' = anyone's). Returns {1, record} taken, {0} missing,
# {2} denied, {3} already consumed (the tombstone).
TAKE = r"""
local v = redis.call('GET', KEYS[1])
if not v then return {0} end
if v == '-' then return {3} end
if ARGV[1] ~= '' then
  local owner = cjson.decode(v)['u']
  if owner ~= ARGV[1] then return {2} end
end
redis.call('SET', KEYS[1], '-', 'KEEPTTL')
return {1, v}
"""

# The published snapshot of every deployment's figures and the lease of the replica publishing it.
# KEYS: snapshot, lease. ARGV: replica id, lease ms. Returns {1 when this replica publishes, snapshot}.
VIEW = r"""
local holder = redis.call('GET', KEYS[2])
local lead = 0
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
  lead = 1
end
return {lead, redis.call('GET', KEYS[1])}
"""

# A learned model's checkpoint: the sum of its log up to entry `id`. Kept only when newer than the
# stored one; the log is then trimmed before the previous checkpoint, so a replica up to one
# checkpoint period behind still finds every entry it has not read.
# KEYS: checkpoint hash, log stream. ARGV: id ms, id seq, id, blob, ttl ms. Returns 1 when stored.
CHECKPOINT = r"""
local cur = redis.call('HGET', KEYS[1], 'id')
if cur then
  local ms, seq = string.match(cur, '^(%d+)-(%d+)$')
  ms, seq = tonumber(ms), tonumber(seq)
  local nms, nseq = tonumber(ARGV[1]), tonumber(ARGV[2])
  if ms > nms or (ms == nms and seq >= nseq) then return 0 end
  redis.call('XTRIM', KEYS[2], 'MINID', cur)
  redis.call('HSET', KEYS[1], 'prev', cur)
end
redis.call('HSET', KEYS[1], 'id', ARGV[3], 'blob', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return 1
"""

# One block of the dashboard's shared history: amounts add up across every writer.
# KEYS: block hash, writer marker. ARGV: ttl ms, seq|'', marker ttl s, then field, amount pairs.
HISTORY = _ONCE + r"""
if not first_time(KEYS[2], ARGV[2], ARGV[3]) then return 0 end
for i = 4, #ARGV, 2 do redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# Recent decisions of every replica, newest last. KEYS: list, writer marker.
# ARGV: keep, ttl ms, seq|'', marker ttl s, entries.
RECENT = _ONCE + r"""
if not first_time(KEYS[2], ARGV[3], ARGV[4]) then return 0 end
if #ARGV > 4 then redis.call('RPUSH', KEYS[1], unpack(ARGV, 5)) end
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[1]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# Rate-limit counters of one bucket (one slot): add this writer's increments once, then read.
# KEYS: writer marker, then the counters. ARGV: seq|'', marker ttl s, counter ttl s, then one
# amount per counter (0: read only). Returns the counters' totals, in order.
RL_ADD = _ONCE + r"""
local apply = first_time(KEYS[1], ARGV[1], ARGV[2])
local out = {}
for i = 2, #KEYS do
  local n = tonumber(ARGV[i + 2])
  if apply and n ~= 0 then
    out[#out + 1] = redis.call('INCRBY', KEYS[i], n)
    redis.call('EXPIRE', KEYS[i], ARGV[3])
  else
    out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
end
return out
"""
