-- One purchase, run inside Redis as a single step: no other command can run
-- between the stock check and the decrement, so no lock and no retry.
-- KEYS[1] = commodity:num, KEYS[2] = user:id, KEYS[3] = commodity:sale,
-- KEYS[4] = seckill:orders; ARGV[1] = the user id, ARGV[2] = the sale this
-- server sells, ARGV[3] = this server's name, ARGV[4] = "orders" to add
-- the order to the stream in the same step (src/orders/stream.rs `add`).
-- Returns nil when no sale is set up, else {response_num} or {1, stock
-- left}; the codes are those of `Answer` in src/answer.rs. The errors
-- REPLACED and BADSTOCK (`Trouble` in src/trouble.rs) come before any write.
local stock = redis.call('GET', KEYS[1])
if not stock then
  return false
end
if redis.call('GET', KEYS[3]) ~= ARGV[2] then
  return redis.error_reply('REPLACED another seckill started a new sale')
end
-- A whole number as DECR reads one, within 64 bits: Lua's tonumber takes
-- 7.5, 1e3 and " 100", which DECR refuses after the buyer would be added.
local digits = string.match(stock, '^-?([1-9]%d*)$')
if stock ~= '0' and not (digits and (#digits < 19 or
    (#digits == 19 and digits <= '9223372036854775807'))) then
  return redis.error_reply('BADSTOCK ' .. string.sub(stock, 1, 40))
end
if tonumber(stock) < 1 then
  return {-1}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {-2}
end
-- Every write is allowed before the first is made (Redis 7's ACL check):
-- a user without one of them buys nothing, rather than a stock taken and
-- no winner recorded.
if redis.acl_check_cmd and not (redis.acl_check_cmd('DECR', KEYS[1])
    and redis.acl_check_cmd('SADD', KEYS[2], ARGV[1])
    and (ARGV[4] ~= 'orders' or redis.acl_check_cmd('XADD', KEYS[4], '*', 'user', ARGV[1]))) then
  return redis.error_reply('NOPERM the Redis user may not run DECR, SADD or XADD on the sale')
end
-- The decrement before the buyer is added: an error (a number beyond 64
-- bits, a replica refusing writes) ends the script with nothing written.
-- The order first: an XADD Redis refuses (the key is not a stream) ends
-- the script before the sale, as a refused DECR does.
if ARGV[4] == 'orders' then
  redis.call('XADD', KEYS[4], '*', 'user', ARGV[1], 'sale', ARGV[2],
    'left', tonumber(stock) - 1, 'seller', ARGV[3])
end
local left = redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return {1, left}
