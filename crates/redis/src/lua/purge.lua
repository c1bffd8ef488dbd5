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
  for _, id in ipairs(ids) do
    if not seen[id] then
      local rec = redis.call('HGET', n .. 'M', id)
      local exp = tonumber(redis.call('ZSCORE', n .. 'X', id) or '0')
      if rec == false or exp <= now then
        seen[id] = true
        if not dry then unindex(n, id) end
      elseif matches(s, cjson.decode(rec)) then
        seen[id] = true
        matched = matched + 1
        if not dry then
          if req.m == 'h' then
            unindex(n, id)
          elseif not redis.call('HGET', n .. 'S', id) then
            redis.call('HSET', n .. 'S', id, now)
            extend(n .. 'S', exp - now)
          end
        end
      end
    end
  end
end
return matched
