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

-- The host name of an authority, without its port (vanish_engine::url::hostname).
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

-- vanish_engine::url::host_matches
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

-- A stored index record is "<expiry ms>|<json>".
local function read_rec(raw)
  local i = string.find(raw, '|', 1, true)
  return tonumber(string.sub(raw, 1, i - 1)), cjson.decode(string.sub(raw, i + 1))
end

-- Runs cmd key list... in chunks (Lua's unpack has a stack limit).
local function chunked(cmd, key, list)
  for i = 1, #list, 1000 do
    local j = math.min(i + 999, #list)
    if key then
      redis.call(cmd, key, unpack(list, i, j))
    else
      redis.call(cmd, unpack(list, i, j))
    end
  end
end

-- Removal of many objects with few commands: add() collects, flush() removes the objects
-- and every index entry of them. An id whose record is known is the current holder of its
-- resource field (replacing a variant removes the old id first), so that field goes too.
local Batch = {}
Batch.__index = Batch

local function new_batch(n)
  return setmetatable({n = n, ids = {}, objs = {}, z = {}, s = {}, r = {}, count = 0, bytes = 0}, Batch)
end

local function push(t, k, v)
  local l = t[k]
  if not l then
    l = {}
    t[k] = l
  end
  l[#l + 1] = v
end

function Batch:add(id, rec)
  local n = self.n
  self.ids[#self.ids + 1] = id
  self.objs[#self.objs + 1] = n .. 'o:' .. id
  if rec then
    local member = rec.p .. '\0' .. id
    push(self.z, n .. 'p', member)
    push(self.z, n .. 'h:' .. rec.n, member)
    for _, t in ipairs(rec.t or {}) do push(self.s, n .. 't:' .. t, id) end
    push(self.r, n .. 'r:' .. rec.r, rec.f)
    self.count = self.count + 1
    self.bytes = self.bytes + (rec.z or 0)
  end
end

-- A buried object (see bury) whose index entries go now: its record and body are gone
-- already, and its resource field may meanwhile name a newer object, so that field goes only
-- if it still names this one.
function Batch:add_dead(id, rec)
  local n = self.n
  self.ids[#self.ids + 1] = id
  local member = rec.p .. '\0' .. id
  push(self.z, n .. 'p', member)
  push(self.z, n .. 'h:' .. rec.n, member)
  for _, t in ipairs(rec.t or {}) do push(self.s, n .. 't:' .. t, id) end
  self.dead = self.dead or {}
  self.dead[#self.dead + 1] = {n .. 'r:' .. rec.r, rec.f, id}
  self.bytes = self.bytes + (rec.z or 0)
end

function Batch:flush()
  if #self.ids == 0 then return 0 end
  local n = self.n
  local removed = #self.ids
  if not self.dead then
    chunked('HDEL', n .. 'M', self.ids)
    chunked('DEL', nil, self.objs)
  end
  chunked('ZREM', n .. 'X', self.ids)
  if redis.call('EXISTS', n .. 'S') == 1 then chunked('HDEL', n .. 'S', self.ids) end
  for k, l in pairs(self.z) do chunked('ZREM', k, l) end
  for k, l in pairs(self.s) do chunked('SREM', k, l) end
  for k, l in pairs(self.r) do chunked('HDEL', k, l) end
  for _, d in ipairs(self.dead or {}) do
    if redis.call('HGET', d[1], d[2]) == d[3] then redis.call('HDEL', d[1], d[2]) end
  end
  if self.count > 0 then redis.call('HINCRBY', n .. 'c', 'n', -self.count) end
  if self.bytes > 0 then redis.call('HINCRBY', n .. 'c', 'b', -self.bytes) end
  self.ids, self.objs, self.z, self.s, self.r, self.count, self.bytes = {}, {}, {}, {}, {}, 0, 0
  self.dead = nil
  return removed
end

-- Hard purges of many objects: their bodies and records go at once (so nothing serves or
-- matches them any more), and their raw records are queued in the bucket's graveyard; the
-- sweep removes their index entries soon after, off the purge's path.
local function bury(n, now, ids, raws, maxexp)
  if #ids == 0 then return end
  local objs, entries = {}, {}
  for i, id in ipairs(ids) do
    objs[i] = n .. 'o:' .. id
    entries[i] = id .. '|' .. raws[i]
  end
  chunked('DEL', nil, objs)
  chunked('HDEL', n .. 'M', ids)
  chunked('RPUSH', n .. 'D', entries)
  extend(n .. 'D', math.max(maxexp - now, 1))
  redis.call('HINCRBY', n .. 'c', 'n', -#ids)
end

-- Removes the index entries of up to max buried objects; returns how many.
local function exhume(n, max)
  local entries = redis.call('LPOP', n .. 'D', max)
  if not entries then return 0 end
  local b = new_batch(n)
  for _, e in ipairs(entries) do
    local i = string.find(e, '|', 1, true)
    local _, rec = read_rec(string.sub(e, i + 1))
    b:add_dead(string.sub(e, 1, i - 1), rec)
  end
  b:flush()
  return #entries
end

-- Removes one object now; returns 1 if it was indexed.
local function unindex(n, id)
  local raw = redis.call('HGET', n .. 'M', id)
  local b = new_batch(n)
  local rec = nil
  if raw then
    local _
    _, rec = read_rec(raw)
  end
  b:add(id, rec)
  b:flush()
  if raw then return 1 end
  return 0
end

-- Records of these ids (aligned; false where unknown), read in chunks.
local function records(n, ids)
  local out = {}
  for i = 1, #ids, 1000 do
    local j = math.min(i + 999, #ids)
    local got = redis.call('HMGET', n .. 'M', unpack(ids, i, j))
    for k = 1, #got do out[i + k - 1] = got[k] end
  end
  return out
end

-- Unindexes up to max objects whose time is up, after the graveyard.
local function prune(n, now, max)
  local buried = exhume(n, max)
  if buried >= max then return buried end
  max = max - buried
  local ids = redis.call('ZRANGEBYSCORE', n .. 'X', '-inf', now, 'LIMIT', 0, max)
  local recs = records(n, ids)
  local b = new_batch(n)
  for i, id in ipairs(ids) do
    local rec = nil
    if recs[i] then
      local _
      _, rec = read_rec(recs[i])
    end
    b:add(id, rec)
  end
  b:flush()
  return buried + #ids
end
