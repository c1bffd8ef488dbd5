-- Unindexes objects whose time is up (at most ARGV[1]); returns how many.
return prune(gen_ns(), now_ms(), tonumber(ARGV[1]))
