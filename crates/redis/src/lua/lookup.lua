-- The variants of one resource, oldest first.
-- ARGV: resource key. Returns {soft-all ms or '', blob, soft ms or '', blob, ...}.
local n = gen_ns()
local out = {redis.call('HGET', ctl, 'softall') or ''}
local f = redis.call('HGETALL', n .. 'r:' .. ARGV[1])
local ids = {}
for i = 2, #f, 2 do ids[#ids + 1] = f[i] end
table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
for _, id in ipairs(ids) do
  local blob = redis.call('GET', n .. 'o:' .. id)
  if blob then
    out[#out + 1] = blob
    out[#out + 1] = redis.call('HGET', n .. 'S', id) or ''
  end
end
return out
