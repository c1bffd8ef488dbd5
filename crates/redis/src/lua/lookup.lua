-- The variants of one resource, oldest first.
-- ARGV: resource key. Returns {soft-all ms or '', blob, soft ms or '', blob, ...}.
local head = redis.call('HMGET', ctl, 'gen', 'softall')
local n = tag .. ':' .. (head[1] or '0') .. ':'
local out = {head[2] or ''}
local f = redis.call('HGETALL', n .. 'r:' .. ARGV[1])
local ids = {}
for i = 2, #f, 2 do ids[#ids + 1] = f[i] end
if #ids > 1 then
  table.sort(ids, function(a, b) return tonumber(a) < tonumber(b) end)
end
local soft = redis.call('EXISTS', n .. 'S') == 1
for _, id in ipairs(ids) do
  local blob = redis.call('GET', n .. 'o:' .. id)
  if blob then
    out[#out + 1] = blob
    if soft then
      out[#out + 1] = redis.call('HGET', n .. 'S', id) or ''
    else
      out[#out + 1] = ''
    end
  end
end
return out
