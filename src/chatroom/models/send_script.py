"""The send script (SPEC §3-§8): one atomic round trip per message, and what it answers.

``models/messages.py`` runs it: the room's epoch, the ``client_id`` dedupe, the room's
rules (bans, mutes, read-only), the sender's rate bucket, the next id and ``rev``, the
append and its trim above the archive's watermark, the mention sets and the publish.
"""

from __future__ import annotations

from enum import IntEnum
from string import Template

from chatroom.models.epochs import START_EPOCH_LUA
from chatroom.models.limits import TAKE_TOKEN_LUA
from chatroom.models.room_rules import CHECK_RULES_LUA


class AppendStatus(IntEnum):
    """What the send script did: the first element of its reply ``{status, value}``."""

    #: A retry of a ``client_id`` already stored: nothing stored; value is its id.
    DUPLICATE = 0
    #: Stored and published; value is the new id.
    STORED = 1
    #: The send bucket is empty: nothing stored; value is the wait in milliseconds.
    RATE_LIMITED = 2
    #: [issue 13] The room's rules refuse it: nothing stored; value is the RuleStatus.
    REFUSED = 3
    #: [SPEC §8] The room has no epoch and the caller did not know its floor: nothing
    #: stored; ask again with the floor (``EpochFloorNeeded``).
    NEED_FLOOR = 4


# One round trip per send: epoch, dedupe, the room's rules, rate limit, next id, append,
# trim, publish — atomically. KEYS: seq, log, client-id key, rate bucket, archive
# watermark, rev, change index, epoch, orphans, the rules hash, stale reads, then the
# mention sets of mentioned users (all tagged {room}).
# ARGV: frame head, frame tail (without its closing brace: the script adds the rev),
# history size, event channel, envelope before the id, envelope after the id,
# client-id ttl, "1" when a client_id was given, bucket size, bucket refill per
# second, archive backlog cap, the room's id floor as the caller knows it
# (UNKNOWN_FLOOR: not at all), a new epoch and its event (used only if the room needs
# one, see models/epochs.py), "1" when the floor includes the archive's highest id
# (else a room without an epoch stores nothing: NEED_FLOOR), then the rules check's
# user key, mode and exemption (issue 13).
# Replies {AppendStatus, value}.
SEND_SCRIPT = (
    TAKE_TOKEN_LUA
    + START_EPOCH_LUA
    + CHECK_RULES_LUA
    + Template(
        """
local floor = tonumber(ARGV[12])
local has_epoch = redis.call('EXISTS', KEYS[8]) == 1
if not has_epoch or tonumber(redis.call('GET', KEYS[1]) or '0') < floor then
  if not has_epoch and ARGV[15] ~= '1' then return {$NEED_FLOOR, 0} end
  start_epoch(KEYS[1], KEYS[5], KEYS[2], KEYS[7], KEYS[8], KEYS[9], KEYS[11],
              math.max(floor, 0), ARGV[13], ARGV[4], ARGV[14])
end
if ARGV[8] == '1' then
  local prior = redis.call('GET', KEYS[3])
  if prior then
    -- A write of this connection, so that a WAIT/WAITAOF after it (--durability
    -- strict) covers the original too: replication and the AOF are in order.
    redis.call('EXPIRE', KEYS[3], tonumber(ARGV[7]))
    return {$DUPLICATE, tonumber(prior)}
  end
end
-- [issue 13] a ban, a mute or read-only refuses the message in this same atomic step:
-- a rule written before a moderation action was acknowledged binds every later send.
local refused = check_rules(KEYS[10], ARGV[16], ARGV[17], ARGV[18])
if refused ~= 0 then return {$REFUSED, refused} end
local burst, rate = tonumber(ARGV[9]), tonumber(ARGV[10])
if burst > 0 then
  local wait = take_token(KEYS[4], burst, rate, 1)
  if wait > 0 then return {$RATE_LIMITED, wait} end
end
local id = redis.call('INCR', KEYS[1])
-- [issue 12] the room's change counter rises with every stored message; the frame
-- ends with it. KEYS[12..]: the mention sets of the users the message mentions.
local rev = redis.call('INCR', KEYS[6])
local frame = ARGV[1] .. id .. ARGV[2] .. ',"rev":' .. rev .. '}'
redis.call('RPUSH', KEYS[2], frame)
-- Keep every message above the archive's watermark (KEYS[5]), at most ARGV[11]
-- of them (the backlog cap; 0: no cap), and never fewer than the history size:
-- a message leaves Redis only once it is in SQL (docs/archive.md).
local keep = math.max(tonumber(ARGV[3]), id - tonumber(redis.call('GET', KEYS[5]) or '0'))
local cap = tonumber(ARGV[11])
if cap > 0 and keep > cap then keep = cap end
redis.call('LTRIM', KEYS[2], -keep, -1)
for i = 12, #KEYS do
  redis.call('ZADD', KEYS[i], id, id)
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', '(' .. (id - keep + 1))
end
if ARGV[8] == '1' then
  redis.call('SET', KEYS[3], id, 'EX', tonumber(ARGV[7]))
end
redis.call('PUBLISH', ARGV[4], ARGV[5] .. id .. ARGV[6] .. frame)
return {$STORED, id}
"""
    ).substitute({status.name: int(status) for status in AppendStatus})
)
