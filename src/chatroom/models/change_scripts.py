"""The Lua scripts behind edits, deletes and reactions (SPEC §5), and what they answer.

``models/message_changes.py`` runs them: one reads a message of a room's log; one
commits a change of a message in the log; one commits a change of a message that
is only in the SQL archive; one notes that SQL has such a change. Each commit
checks the message is still as read, takes a send token, raises the room's
``rev`` and publishes the change frame, atomically.
"""

from __future__ import annotations

from enum import IntEnum
from string import Template

from chatroom.models.limits import TAKE_TOKEN_LUA
from chatroom.models.room_rules import CHECK_RULES_LUA


class ChangeStatus(IntEnum):
    """What the change script did: the first element of its reply ``{status, value}``."""

    #: Stored and published; value is the room's new rev.
    CHANGED = 1
    #: The message changed since it was read: nothing done; read it again.
    CONFLICT = 2
    #: The message is no longer in the log (trimmed): nothing done.
    GONE = 3
    #: The send bucket is empty: nothing done; value is the wait in milliseconds.
    RATE_LIMITED = 4
    #: An archived message: the copy read from SQL is older than a change Redis knows
    #: of (SQL is being written): nothing done; read again shortly.
    STALE = 5
    #: [issue 13] The room's rules refuse it (a ban, a mute, read-only): nothing done;
    #: value is the ``RuleStatus``.
    REFUSED = 6


#: How long the key of an archived message's change keeps the rev SQL has after SQL
#: has it: far longer than any change takes between reading SQL and committing.
SETTLED_TTL_SECONDS = 600


# Reads one message of the log by id. KEYS: seq, log. ARGV: id. Replies {seq, frame or false}.
READ_SCRIPT = """
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local index = tonumber(ARGV[1]) - (seq - redis.call('LLEN', KEYS[2]) + 1)
if index < 0 then return {seq, false} end
return {seq, redis.call('LINDEX', KEYS[2], index)}
"""

# Both change scripts, once the message is as read: take a token from the sender's
# bucket (KEYS[5]; size and refill in ARGV[7], ARGV[8]), then raise the room's rev
# (KEYS[3]); ``tail`` ends the new frames with it.
_TOKEN_AND_REV = Template("""
local burst, rate = tonumber(ARGV[7]), tonumber(ARGV[8])
if burst > 0 then
  local wait = take_token(KEYS[5], burst, rate, 1)
  if wait > 0 then return {$RATE_LIMITED, wait} end
end
local rev = redis.call('INCR', KEYS[3])
local tail = ',"rev":' .. rev .. '}'
""").substitute(RATE_LIMITED=int(ChangeStatus.RATE_LIMITED))

# KEYS: seq, log, rev, changes, rate bucket, the room's rules hash, then the mention
# sets: the first ARGV[10] of them get the id, the rest lose it. ARGV: id, the frame
# read, the new frame and the event frame (each without its closing brace: the script
# adds the rev), event channel, envelope head, bucket size, refill per second, history
# size, how many mention sets get the id, then the rules check's user key, mode and
# exemption (issue 13). Replies {ChangeStatus, value}.
CHANGE_SCRIPT = (
    TAKE_TOKEN_LUA
    + CHECK_RULES_LUA
    + Template(
        """
-- [issue 13] a ban, a mute or read-only refuses the change in this same atomic step.
local refused = check_rules(KEYS[6], ARGV[11], ARGV[12], ARGV[13])
if refused ~= 0 then return {$REFUSED, refused} end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local length = redis.call('LLEN', KEYS[2])
local id = tonumber(ARGV[1])
local first = seq - length + 1
local index = id - first
if index < 0 or index >= length then return {$GONE, 0} end
if redis.call('LINDEX', KEYS[2], index) ~= ARGV[2] then return {$CONFLICT, 0} end
$token_and_rev
redis.call('LSET', KEYS[2], index, ARGV[3] .. tail)
redis.call('ZADD', KEYS[4], rev, id)
-- Forget the changes of messages no longer in the log, now and then.
if redis.call('ZCARD', KEYS[4]) > length + tonumber(ARGV[9]) then
  for _, member in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    if tonumber(member) < first then redis.call('ZREM', KEYS[4], member) end
  end
end
local adds = tonumber(ARGV[10])
for i = 7, #KEYS do
  if i < 7 + adds then redis.call('ZADD', KEYS[i], id, id) else redis.call('ZREM', KEYS[i], id) end
end
redis.call('PUBLISH', ARGV[5], ARGV[6] .. ARGV[4] .. tail)
return {$CHANGED, rev}
"""
    ).substitute(
        {status.name: int(status) for status in ChangeStatus},
        token_and_rev=_TOKEN_AND_REV,
    )
)


# A change of a message only in the archive. KEYS: seq, log, rev, changes, rate
# bucket, the room's rules hash, the message's archived_change key. ARGV: id, "frame"
# or "sql" (what the change was computed from), the frame read or the rev of the SQL
# copy read, the new frame and the event frame (without closing braces), event
# channel, bucket size, refill per second, envelope head, then the rules check's user
# key, mode and exemption (issue 13). Replies {ChangeStatus, value}.
ARCHIVED_CHANGE_SCRIPT = (
    TAKE_TOKEN_LUA
    + CHECK_RULES_LUA
    + Template(
        """
local refused = check_rules(KEYS[6], ARGV[10], ARGV[11], ARGV[12])
if refused ~= 0 then return {$REFUSED, refused} end
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local id = tonumber(ARGV[1])
if id > seq or id >= seq - redis.call('LLEN', KEYS[2]) + 1 then return {$CONFLICT, 0} end
local current = redis.call('GET', KEYS[7])
if ARGV[2] == 'frame' then
  if current ~= ARGV[3] then return {$CONFLICT, 0} end
else
  if current and string.sub(current, 1, 1) == '{' then return {$CONFLICT, 0} end
  local base = tonumber(ARGV[3])
  if current and tonumber(current) > base then return {$STALE, 0} end
  if tonumber(redis.call('ZSCORE', KEYS[4], id) or '0') > base then return {$STALE, 0} end
end
$token_and_rev
redis.call('SET', KEYS[7], ARGV[4] .. tail)
redis.call('PUBLISH', ARGV[6], ARGV[9] .. ARGV[5] .. tail)
return {$CHANGED, rev}
"""
    ).substitute(
        {status.name: int(status) for status in ChangeStatus},
        token_and_rev=_TOKEN_AND_REV,
    )
)

# SQL has an archived message's change: its key keeps only the rev, for a while.
# KEYS: the archived_change key. ARGV: the frame SQL got, its rev, the ttl in seconds.
SETTLE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""
