-- One purchase, run inside Redis as a single step: no other command can run
-- between the stock check and the decrement, so no lock and no retry.
-- KEYS[1] = commodity:num, KEYS[2] = user:id, ARGV[1] = the user id.
-- Returns nil when no sale is set up, else {response_num, stock left};
-- the codes are those of `Answer` in src/purchase.rs.
local stock = tonumber(redis.call('GET', KEYS[1]))
if stock == nil then
  return false
end
if stock < 1 then
  return {-1, stock}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {-2, stock}
end
redis.call('SADD', KEYS[2], ARGV[1])
return {1, redis.call('DECR', KEYS[1])}
