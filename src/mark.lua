-- Renews this server's mark on the sale it sells, and reads the stock and
-- the opening, in one step: what /readyz and the mark's renewal each second
-- ask. A write, so a Redis that takes none (a replica, a master short of
-- replicas) says so here, as it would to a purchase.
-- KEYS: commodity:num, commodity:sale, commodity:sellers, commodity:opens
-- ARGV: the sale's id, this server's name, how long its mark lasts (ms)
-- Returns {the stock as Redis holds it, the opening (ms since 1970, or
-- false), Redis's clock (ms)}; nil when no sale is set up; the error
-- REPLACED when another sale took this one's place.
local stock = redis.call('GET', KEYS[1])
if not stock then
  return false
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then
  redis.call('ZREM', KEYS[3], ARGV[2])
  return redis.error_reply('REPLACED another seckill started a new sale')
end
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
return {stock, redis.call('GET', KEYS[4]), now}
