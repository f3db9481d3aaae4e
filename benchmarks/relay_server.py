"""The relay: the least a Tornado + Redis server can do for the generator with N processes.

The ``cost`` scenario's floor (``--cost-server relay``): what N Python processes on
one core, each woken for every event of the rooms it has members in, cost at the
least, measured the same way as ``chatroom serve --processes N``. It speaks the
baseline's protocol subset (``baseline_server.py``: register/login accept anyone,
the token is the name; no storage, no presence) and adds only what N processes need:

* ``send``: one Redis round trip (a Lua script: ``INCR`` of the room's counter and
  ``PUBLISH`` of the frame, encoded once, on the room's channel) gives the room's
  next id; then the ack to the sender;
* each process ``SUBSCRIBE``\\ s to the channel of a room on its first local member
  (the ``joined`` frame waits for Redis to confirm it) and writes every frame
  received there to its local sockets in the room, read below redis-py's
  ``get_message`` as chatroom does (``chatroom.models.pubsub_read``).

Workers are forked as ``chatroom serve`` forks them (``chatroom.workers``): the parent
forwards SIGTERM to every worker. Run:
``python -m benchmarks.relay_server --redis-url redis://127.0.0.1:6379/0 --processes 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

import orjson
import redis.asyncio as aioredis
import tornado.httpserver
import tornado.netutil
import tornado.web

from benchmarks import baseline_server
from chatroom.models.pubsub_read import replies
from chatroom.workers import fork_workers

#: KEYS: the room's counter; ARGV: its channel, the frame before the id, after it.
PUBLISH = """
local id = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. id .. ARGV[3])
return id
"""


class Relay:
    """This process's Redis side: the publishing script, one subscribed connection,
    and the local sockets of each room."""

    def __init__(self, url: str, prefix: str) -> None:
        self.redis = aioredis.Redis.from_url(url)
        self.prefix = prefix
        self.script = self.redis.register_script(PUBLISH)
        self.pubsub = self.redis.pubsub()
        self.members: dict[str, set[Socket]] = {}
        #: Channel -> the room, and the future that Redis's SUBSCRIBE answer resolves.
        self.rooms_of: dict[bytes, str] = {}
        self.subscribed: dict[bytes, asyncio.Future] = {}

    def channel(self, room: str) -> bytes:
        return f"{self.prefix}:room:{room}".encode()

    async def start(self) -> asyncio.Task:
        await self.pubsub.connect()
        return asyncio.create_task(self.read())

    async def join(self, room: str, sock: Socket) -> None:
        """Add a local member; on the room's first, subscribe and wait for Redis to confirm."""
        self.members.setdefault(room, set()).add(sock)
        channel = self.channel(room)
        if channel not in self.subscribed:
            self.rooms_of[channel] = room
            self.subscribed[channel] = asyncio.get_running_loop().create_future()
            await self.pubsub.execute_command("SUBSCRIBE", channel)
        await self.subscribed[channel]

    def leave(self, room: str, sock: Socket) -> None:
        self.members.get(room, set()).discard(sock)

    async def publish(self, room: str, head: bytes, tail: bytes) -> int:
        """The room's next id, with the frame ``head + id + tail`` published on its channel."""
        counter = f"{self.prefix}:last:{room}"
        return await self.script(keys=[counter], args=[self.channel(room), head, tail])

    async def read(self) -> None:
        """Write each frame received to the local sockets of its room."""
        async for reply in replies(self.pubsub):
            kind, channel = reply[0], reply[1]
            if kind == b"message":
                data = reply[2]
                for sock in tuple(self.members.get(self.rooms_of.get(channel, ""), ())):
                    if sock.ws_connection is not None:
                        sock.write_message(data)
            elif kind == b"subscribe":
                future = self.subscribed.get(channel)
                if future is not None and not future.done():
                    future.set_result(None)


class Socket(baseline_server.Socket):
    """The baseline's socket (its ``hello``), with the rooms and ids in Redis."""

    def initialize(self, relay: Relay) -> None:
        self.relay = relay

    async def on_message(self, message) -> None:
        frame = orjson.loads(message)
        kind, room = frame.get("type"), frame.get("room")
        if kind == "join":
            await self.relay.join(room, self)
            self.joined(room)
        elif kind == "send":
            cid = frame.get("client_id")
            head = b'{"type":"message","room":' + orjson.dumps(room) + b',"id":'
            rest = {"user": self.user, "text": frame["text"], "ts": round(time.time(), 6)}
            tail = b"," + orjson.dumps({**rest, "client_id": cid})[1:]
            self.acked(cid, await self.relay.publish(room, head, tail), room)
        elif kind == "ping":
            self.write_message(b'{"type":"pong"}')

    def on_close(self) -> None:
        for room in self.rooms:
            self.relay.leave(room, self)


async def serve(sockets: list, url: str, prefix: str) -> None:
    relay = Relay(url, prefix)
    reader = await relay.start()
    app = tornado.web.Application(
        [(r"/ws", Socket, {"relay": relay}), (r"/(?:api/)?(\w+).*", baseline_server.Json)]
    )
    server = tornado.httpserver.HTTPServer(app, idle_connection_timeout=300)
    server.add_sockets(sockets)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    await asyncio.wait([reader, asyncio.create_task(stop.wait())], return_when="FIRST_COMPLETED")
    server.stop()
    if reader.done():
        reader.result()  # the subscribed connection failed: say why
    reader.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8891)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-prefix", default="relay", help="key and channel prefix")
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    sockets = tornado.netutil.bind_sockets(args.port, "127.0.0.1")
    if args.processes > 1 and fork_workers(args.processes) is None:
        return 0  # the parent: every worker has exited
    asyncio.run(serve(sockets, args.redis_url, args.redis_prefix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
