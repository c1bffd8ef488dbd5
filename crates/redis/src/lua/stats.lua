-- {objects, bytes} of the bucket's current generation.
local n = gen_ns()
return {tonumber(redis.call('HGET', n .. 'c', 'n') or '0'), tonumber(redis.call('HGET', n .. 'c', 'b') or '0')}
