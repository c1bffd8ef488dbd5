-- Stores one object unless a purge logged since the fill began matches it.
-- ARGV: fill_seq, resource key, variant field, index record (JSON), blob, ttl ms,
--       max variants, prune batch.
-- Returns {0 fresh | 1 stored stale | 2 dropped, variants of the resource now,
--          1 if this variant is new to the resource}.
local fill_seq = tonumber(ARGV[1])
local r = cjson.decode(ARGV[4])
local floor = tonumber(redis.call('HGET', ctl, 'floor') or '0')
local soft = false
if fill_seq < floor then return {2, 0, 0} end
for _, e in ipairs(redis.call('ZRANGEBYSCORE', logkey, '(' .. ARGV[1], '+inf')) do
  local i = string.find(e, '|', 1, true)
  local req = cjson.decode(string.sub(e, i + 1))
  for _, s in ipairs(req.s) do
    if matches(s, r) then
      if req.m == 'h' then return {2, 0, 0} end
      soft = true
    end
  end
end
local n = gen_ns()
local now = now_ms()
local ttl = tonumber(ARGV[6])
prune(n, now, tonumber(ARGV[8]))
local rk = n .. 'r:' .. ARGV[2]
local old = redis.call('HGET', rk, ARGV[3])
local added = 1
if old then
  unindex(n, old)
  added = 0
end
local maxv = tonumber(ARGV[7])
while redis.call('HLEN', rk) >= maxv do
  local f = redis.call('HGETALL', rk)
  local oldest, field = nil, nil
  for i = 2, #f, 2 do
    if oldest == nil or tonumber(f[i]) < tonumber(oldest) then oldest, field = f[i], f[i - 1] end
  end
  if unindex(n, oldest) == 0 then redis.call('HDEL', rk, field) end
end
local id = tostring(redis.call('HINCRBY', ctl, 'id', 1))
redis.call('SET', n .. 'o:' .. id, ARGV[5], 'PX', ttl)
redis.call('HSET', rk, ARGV[3], id)
extend(rk, ttl)
redis.call('HSET', n .. 'M', id, (now + ttl) .. '|' .. ARGV[4])
extend(n .. 'M', ttl)
redis.call('ZADD', n .. 'X', now + ttl, id)
extend(n .. 'X', ttl)
local member = r.p .. '\0' .. id
redis.call('ZADD', n .. 'p', 0, member)
extend(n .. 'p', ttl)
redis.call('ZADD', n .. 'h:' .. r.n, 0, member)
extend(n .. 'h:' .. r.n, ttl)
for _, t in ipairs(r.t or {}) do
  redis.call('SADD', n .. 't:' .. t, id)
  extend(n .. 't:' .. t, ttl)
end
if soft then
  redis.call('HSET', n .. 'S', id, now)
  extend(n .. 'S', ttl)
end
redis.call('HINCRBY', n .. 'c', 'n', 1)
redis.call('HINCRBY', n .. 'c', 'b', r.z or 0)
extend(n .. 'c', ttl)
local state = 0
if soft then state = 1 end
return {state, redis.call('HLEN', rk), added}
