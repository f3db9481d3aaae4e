"""[issue 17] Reading a confirmed subscription's messages below redis-py's ``get_message``.

Every process reads every event of the rooms it has members in (with
``--pubsub-channels one``, of every room, dropping those it has no member in): that
read is paid once per process per event. ``PubSub.get_message`` spends far more than
the drop itself on each message (the health check, the retry wrapper, a timeout
context that arms and cancels a timer, the push handler, a dict per message;
measured by ``benchmarks/receive_cost.py``, see docs/cost-per-process.md).

``replies`` reads the subscribed connection's socket stream itself and feeds
redis-py's own hiredis reader, then takes every reply that one read brought in, with
no await between them; the listener keeps the messages among them. It needs
the hiredis parser (``redis[hiredis]``, a dependency) and the attributes it has in
redis-py 8; anywhere else (the pure-Python parser, a connection with health checks,
another redis-py) it reads with ``get_message`` as before.

A closed or reset connection raises ``redis.exceptions.ConnectionError`` (or the
``OSError``), as ``get_message`` would: the caller subscribes again and catches
up from the history. No silent reconnect happens below it. An error reply (a
``MOVED`` answer to an ``SSUBSCRIBE`` in a Cluster, an ACL refusal) is raised too,
as ``get_message`` raises it: skipped, its subscription would be waited for forever.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.exceptions import ConnectionError as RedisConnectionError

try:  # redis-py's marker for "no complete reply buffered" (its hiredis parser)
    from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
except ImportError:  # another redis-py: get_message only
    NOT_ENOUGH_DATA = _AsyncHiredisParser = None

#: How much one read of the socket takes at most (redis-py's own default read size).
READ_SIZE = 65536


async def replies(pubsub) -> AsyncIterator[list]:
    """Every three-part pub/sub reply that arrives on ``pubsub``'s connection, as
    redis-py's parser gives it (``[b"message", channel, payload]``, ``[b"subscribe",
    channel, count]``, ...), until the connection fails or Redis answers with an
    error (raised); anything else (a pong: ``PONG``, or ``[b"pong", b""]`` on a
    subscribed RESP2 connection) is skipped. The caller keeps the kinds it wants:
    one loop, no layer per message."""
    source = _hiredis_source(pubsub)
    if source is None:
        async for reply in _by_get_message(pubsub):
            yield reply
        return
    reader, stream = source
    while True:
        reply = reader.gets()
        if reply is NOT_ENOUGH_DATA:
            data = await stream.read(READ_SIZE)
            if not data:
                raise RedisConnectionError("Connection closed by server.")
            reader.feed(data)
        elif isinstance(reply, list) and len(reply) == 3:  # a RESP3 push is a list too
            yield reply
        elif isinstance(reply, Exception):  # the parser's error reply, not raised by it
            raise reply


def _hiredis_source(pubsub):
    """(hiredis reader, socket stream) of the subscribed connection; None when the
    connection is not one this module can read below redis-py."""
    conn = getattr(pubsub, "connection", None)
    parser = getattr(conn, "_parser", None)
    if _AsyncHiredisParser is None or not isinstance(parser, _AsyncHiredisParser):
        return None
    if getattr(conn, "health_check_interval", 0) or conn.encoder.decode_responses:
        return None  # pings to send, or replies as str: get_message does both
    reader, stream = getattr(parser, "_reader", None), getattr(parser, "_stream", None)
    if reader is None or stream is None or not getattr(parser, "_connected", False):
        return None
    return reader, stream


async def _by_get_message(pubsub) -> AsyncIterator[list]:
    while True:
        reply = await pubsub.get_message(timeout=30.0)
        if reply is not None and reply["type"] != "pong":  # skipped, as above
            channel, data = reply["channel"], reply["data"]
            yield [
                reply["type"].encode(),
                channel.encode() if isinstance(channel, str) else channel,
                data,
            ]
