-- A fresh sale in one step: the tutorial's SET commodity:num 500 and
-- SADD user:id null, done only when no other server's mark is live (or
-- ARGV[5] is "replace"), so a running sale is never wiped by mistake.
-- KEYS: commodity:num, commodity:initial, user:id, commodity:sale,
--       commodity:sellers, commodity:opens, seckill:orders:database
-- ARGV: the stock, the new sale's id, this server's name, how long its mark
--       lasts (ms), "replace" or "", the placeholder member of user:id,
--       the opening: "" (at once), "in:MS" (from now) or "at:MS" (since 1970),
--       where the sale's orders go (src/orders/database.rs `Location`)
-- Returns {started, others' names, their marks' ms left, the replaced
-- sale's initial stock, stock left and winners, the opening (ms since 1970,
-- or false), Redis's clock now (ms)}.
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
if ARGV[5] ~= 'replace' then
  local marks = redis.call('ZRANGE', KEYS[5], 0, -1, 'WITHSCORES')
  if #marks > 0 then
    local names, lefts = {}, {}
    for i = 1, #marks, 2 do
      names[#names + 1] = marks[i]
      lefts[#lefts + 1] = tonumber(marks[i + 1]) - now
    end
    return {0, names, lefts, false, false, 0, false, now}
  end
end
local initial = redis.call('GET', KEYS[2])
local stock = redis.call('GET', KEYS[1])
local winners = redis.call('SCARD', KEYS[3]) - redis.call('SISMEMBER', KEYS[3], ARGV[6])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('SADD', KEYS[3], ARGV[6])
redis.call('SET', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[5])
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[4]), ARGV[3])
local opens = false
if ARGV[7]:sub(1, 3) == 'in:' then
  opens = now + tonumber(ARGV[7]:sub(4))
elseif ARGV[7]:sub(1, 3) == 'at:' then
  opens = tonumber(ARGV[7]:sub(4))
end
if opens then
  redis.call('SET', KEYS[6], opens)
else
  redis.call('DEL', KEYS[6])
end
redis.call('SET', KEYS[7], ARGV[8])
return {1, {}, {}, initial, stock, winners, opens, now}
