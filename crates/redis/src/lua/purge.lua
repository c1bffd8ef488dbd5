-- Purges (or counts) what a request's selectors match in this bucket, and logs the purge for
-- fills still running. ARGV: seq, request (wire JSON), dry run '1'/'0', log capacity.
-- Returns the number of objects matched.
local dry = ARGV[3] == '1'
local req = cjson.decode(ARGV[2])
local now = now_ms()
if not dry then
  redis.call('ZADD', logkey, ARGV[1], ARGV[1] .. '|' .. ARGV[2])
  local cap = tonumber(ARGV[4])
  local len = redis.call('ZCARD', logkey)
  if len > cap then
    local old = redis.call('ZRANGE', logkey, 0, len - cap - 1, 'WITHSCORES')
    local floor = tonumber(old[#old])
    redis.call('ZREMRANGEBYRANK', logkey, 0, len - cap - 1)
    if floor > tonumber(redis.call('HGET', ctl, 'floor') or '0') then
      redis.call('HSET', ctl, 'floor', floor)
    end
  end
end
local n = gen_ns()
for _, s in ipairs(req.s) do
  if s.k == 'all' and (s.x == nil or #s.x == 0) then
    local count = tonumber(redis.call('HGET', n .. 'c', 'n') or '0')
    if not dry then
      if req.m == 'h' then
        -- O(1): the old generation's keys are never read again and expire by their TTLs.
        redis.call('HINCRBY', ctl, 'gen', 1)
      else
        redis.call('HSET', ctl, 'softall', now)
      end
    end
    return count
  end
end
local function lex_ids(key, lo, hi, out)
  for _, m in ipairs(redis.call('ZRANGEBYLEX', key, lo, hi)) do
    local i = string.find(m, '\0', 1, true)
    out[#out + 1] = string.sub(m, i + 1)
  end
end
local seen = {}
local matched = 0
local sweep = new_batch(n)
local dead_ids, dead_raws, maxexp = {}, {}, now
local soft = {}
for _, s in ipairs(req.s) do
  local ids = {}
  if s.k == 'url' then
    lex_ids(n .. 'h:' .. hostname(s.h), '[' .. s.p .. '\0', '(' .. s.p .. '\1', ids)
  elseif s.k == 'path' then
    lex_ids(n .. 'p', '[' .. s.p .. '\0', '(' .. s.p .. '\1', ids)
  elseif s.k == 'prefix' then
    local key = n .. 'p'
    if s.h then key = n .. 'h:' .. hostname(s.h) end
    lex_ids(key, '[' .. s.p, '(' .. s.p .. '\255', ids)
  elseif s.k == 'tag' then
    ids = redis.call('SMEMBERS', n .. 't:' .. s.t)
  elseif s.k == 'host' then
    lex_ids(n .. 'h:' .. hostname(s.h), '-', '+', ids)
  elseif s.k == 'all' then
    ids = redis.call('HKEYS', n .. 'M')
  end
  -- Candidates that match by construction need no decoding.
  local plain = s.x == nil or #s.x == 0
  local exact = plain and (s.k == 'tag' or (s.k == 'prefix' and s.h == nil) or (s.k == 'path' and s.qa))
  local fresh = {}
  for _, id in ipairs(ids) do
    if not seen[id] then fresh[#fresh + 1] = id end
  end
  local recs = records(n, fresh)
  for i, id in ipairs(fresh) do
    local raw = recs[i]
    if raw then
      local bar = string.find(raw, '|', 1, true)
      local exp = tonumber(string.sub(raw, 1, bar - 1))
      if exp <= now then
        -- Expired, not yet swept: not a match; sweep it now.
        seen[id] = true
        if not dry then sweep:add(id, cjson.decode(string.sub(raw, bar + 1))) end
      elseif exact or matches(s, cjson.decode(string.sub(raw, bar + 1))) then
        seen[id] = true
        matched = matched + 1
        if not dry then
          if req.m == 'h' then
            dead_ids[#dead_ids + 1] = id
            dead_raws[#dead_raws + 1] = raw
            if exp > maxexp then maxexp = exp end
          else
            soft[#soft + 1] = {id, exp}
          end
        end
      end
    end
  end
end
sweep:flush()
bury(n, now, dead_ids, dead_raws, maxexp)
for _, e in ipairs(soft) do
  if redis.call('HSETNX', n .. 'S', e[1], now) == 1 then
    extend(n .. 'S', e[2] - now)
  end
end
return matched
