"""Lua scripts of the Redis backend. Each touches the keys of ONE hash tag, so it runs in one slot.

`RECORD` is the Lua twin of `_model.apply_outcome` + `circuit.circuit_step`: keep them in step
(the shared contract suite runs the same scenarios against both backends).
Numbers are written with %.17g so a double survives the round trip through a hash field.
"""

from __future__ import annotations

__all__ = ["FEEDBACK", "PROBE", "RECORD", "SPEND"]

# KEYS: stats hash, circuit hash, cool key, probe key.
# ARGV: half_life_s, min_gen_ms, ttl_ms, failure_threshold, error_rate_threshold, min_samples,
#       cooldown_ms, then 6 per outcome (sorted by ts): ts, status, latency_ms, ttft_ms|'',
#       output_tokens, cost_usd. Returns the circuit transitions, in order.
RECORD = r"""
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

local hl, min_gen, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local fail_n, thr, min_s = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local cool_ms = tonumber(ARGV[7])
local h, c = load(KEYS[1]), load(KEYS[2])
local cooling = redis.call('EXISTS', KEYS[3]) == 1
local events = {}

for i = 8, #ARGV, 6 do
  local ts, status, lat = tonumber(ARGV[i]), ARGV[i + 1], tonumber(ARGV[i + 2])
  local ttft, tok, cost = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  local w, last = 1, h['t']
  if last == nil or ts >= last then
    if last ~= nil and ts > last then
      local k = 2 ^ (-(ts - last) / hl)
      for name, v in pairs(h) do if name ~= 't' then h[name] = v * k end end
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
  end
end
save(KEYS[1], h, ttl)
save(KEYS[2], c, ttl)
return events
"""

# KEYS: circuit hash, cool key, probe key. ARGV: probe_ttl_ms. Returns 1 if a request may go.
PROBE = r"""
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'x') or '0') < 1 then return 1 end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""

# KEYS: day key, month key. ARGV: nano-dollars, day ttl s, month ttl s. Returns {day, month}.
SPEND = r"""
local d = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
local m = redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {d, m}
"""

# KEYS: quality hash. ARGV: score, 1 - score, ttl_ms, domain|''. Beta posterior sums.
FEEDBACK = r"""
redis.call('HINCRBYFLOAT', KEYS[1], 'a', ARGV[1])
redis.call('HINCRBYFLOAT', KEYS[1], 'b', ARGV[2])
if ARGV[4] ~= '' then
  redis.call('HINCRBYFLOAT', KEYS[1], 'a:' .. ARGV[4], ARGV[1])
  redis.call('HINCRBYFLOAT', KEYS[1], 'b:' .. ARGV[4], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
