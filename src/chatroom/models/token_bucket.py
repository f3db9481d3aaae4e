"""The token bucket every Redis script of chatroom shares, as a Lua function.

Scripts that need one prepend ``TAKE_TOKEN_LUA`` and call
``take_token(key, size, rate, take)``: 0 when the tokens were taken (or, with
``take`` 0, when one is there), else the wait in milliseconds. The bucket is a
hash (tokens, ts) on Redis's own clock, so every process and host shares it.
"""

TAKE_TOKEN_LUA = """
local function take_token(key, size, rate, take)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  local bucket = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(bucket[1]) or size
  local ts = tonumber(bucket[2]) or now
  tokens = math.min(size, tokens + math.max(0, now - ts) * rate)
  if tokens < 1 then return math.ceil((1 - tokens) / rate * 1000) end
  if take > 0 then
    redis.call('HSET', key, 'tokens', string.format('%.6f', tokens - take),
               'ts', string.format('%.6f', now))
    redis.call('EXPIRE', key, math.ceil(size / rate) + 1)
  end
  return 0
end
"""
