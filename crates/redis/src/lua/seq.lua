-- The next purge sequence number: the server's time in microseconds, or one more than the
-- last number if that is later. Numbers stay comparable across a restart that lost the data
-- (a node's stamp from before is always older than any purge after), so read-after-purge
-- survives it. KEYS[1]: the sequence key.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local nxt = math.max(now, cur + 1)
redis.call('SET', KEYS[1], string.format('%d', nxt))
return string.format('%d', nxt)
