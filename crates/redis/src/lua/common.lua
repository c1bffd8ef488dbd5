-- Shared by every Vanish bucket script. KEYS[1] is the bucket's control hash "{tag}:m"
-- (fields: gen, floor, id, softall); every other key of the bucket is derived from its hash
-- tag, so a script touches one Cluster slot only.
local ctl = KEYS[1]
local tag = string.sub(ctl, 1, #ctl - 2)
local logkey = tag .. ':log'

local function gen_ns()
  return tag .. ':' .. (redis.call('HGET', ctl, 'gen') or '0') .. ':'
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- PEXPIRE key ttl unless it already lives longer.
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- The host name of an authority, without its port (vanish_engine::key::hostname).
local function hostname(a)
  if string.sub(a, 1, 1) == '[' then
    local i = string.find(a, ']', 1, true)
    if i then return string.sub(a, 1, i) end
    return a
  end
  local name = string.match(a, '^(.*):%d*$')
  if name then return name end
  return a
end

-- vanish_engine::key::host_matches
local function host_matches(sel, auth)
  if sel == auth then return true end
  return hostname(sel) == sel and hostname(auth) == sel
end

local function query_ok(s, r)
  if s.qa then return true end
  return s.q == r.q
end

local function headers_ok(s, r)
  if not s.x then return true end
  for _, want in ipairs(s.x) do
    for _, got in ipairs(r.v or {}) do
      if got[1] == want[1] then
        if got[2] ~= want[2] then return false end
        break
      end
    end
  end
  return true
end

-- vanish_engine::selector::Selector::matches, on an index record.
local function matches(s, r)
  local k = s.k
  local ok = false
  if k == 'url' then
    ok = r.h == s.h and r.p == s.p and query_ok(s, r)
  elseif k == 'path' then
    ok = r.p == s.p and query_ok(s, r)
  elseif k == 'prefix' then
    ok = string.sub(r.p, 1, #s.p) == s.p and (s.h == nil or host_matches(s.h, r.h))
  elseif k == 'tag' then
    for _, t in ipairs(r.t or {}) do
      if t == s.t then ok = true break end
    end
  elseif k == 'host' then
    ok = host_matches(s.h, r.h)
  elseif k == 'all' then
    ok = true
  end
  return ok and headers_ok(s, r)
end

-- Removes an object and every index entry of it. Returns 1 if it was indexed.
local function unindex(n, id)
  local rec = redis.call('HGET', n .. 'M', id)
  redis.call('ZREM', n .. 'X', id)
  redis.call('HDEL', n .. 'S', id)
  redis.call('DEL', n .. 'o:' .. id)
  if not rec then return 0 end
  redis.call('HDEL', n .. 'M', id)
  local r = cjson.decode(rec)
  local member = r.p .. '\0' .. id
  redis.call('ZREM', n .. 'p', member)
  redis.call('ZREM', n .. 'h:' .. r.n, member)
  for _, t in ipairs(r.t or {}) do
    redis.call('SREM', n .. 't:' .. t, id)
  end
  local rk = n .. 'r:' .. r.r
  if redis.call('HGET', rk, r.f) == id then
    redis.call('HDEL', rk, r.f)
  end
  redis.call('HINCRBY', n .. 'c', 'n', -1)
  redis.call('HINCRBY', n .. 'c', 'b', -(r.z or 0))
  return 1
end

-- Unindexes up to max objects whose time is up.
local function prune(n, now, max)
  local ids = redis.call('ZRANGEBYSCORE', n .. 'X', '-inf', now, 'LIMIT', 0, max)
  for _, id in ipairs(ids) do unindex(n, id) end
  return #ids
end
