"""The baseline: the least a Tornado process can do for the generator (no storage, no auth).

Register/login accept anyone (the token is the name); on ``send`` it gives the room's next
consecutive id, broadcasts a ``message`` frame to every socket in the room and acks.
Run: ``python -m benchmarks.baseline_server --port 8890``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import orjson
import tornado.web
import tornado.websocket

ROOMS: dict[str, set] = {}
LAST_ID: dict[str, int] = {}
NODELAY = True


class Json(tornado.web.RequestHandler):
    def post(self, what: str) -> None:
        name = orjson.loads(self.request.body or b"{}").get("username") or what
        self.set_status(201 if what != "login" else 200)
        self.finish(orjson.dumps({"user": {"name": name}, "token": name, "room": {}}))

    def get(self, what: str) -> None:
        self.finish({"status": "ok"})


class Socket(tornado.websocket.WebSocketHandler):
    def open(self) -> None:
        if NODELAY:
            self.set_nodelay(True)  # frames go out at once, not after the peer's delayed ACK
        self.user = self.request.headers.get("Authorization", "Bearer ?")[7:]
        self.rooms: set[str] = set()
        self.write_message(orjson.dumps({"type": "hello", "user": self.user, "rooms": []}))

    def on_message(self, message) -> None:
        frame = orjson.loads(message)
        kind, room = frame.get("type"), frame.get("room")
        if kind == "join":
            ROOMS.setdefault(room, set()).add(self)
            self.joined(room)
        elif kind == "send":
            LAST_ID[room] = msg_id = LAST_ID.get(room, 0) + 1
            cid = frame.get("client_id")
            out = {"type": "message", "room": room, "id": msg_id, "user": self.user}
            out.update(text=frame["text"], ts=round(time.time(), 6), client_id=cid)
            data = orjson.dumps(out)
            for sock in tuple(ROOMS.get(room, ())):
                if sock.ws_connection is not None:
                    sock.write_message(data)
            self.acked(cid, msg_id, room)
        elif kind == "ping":
            self.write_message(b'{"type":"pong"}')

    def joined(self, room: str) -> None:
        """``room`` joined: an empty ``joined`` frame (no history, nobody online)."""
        self.rooms.add(room)
        joined = {"type": "joined", "room": room, "messages": [], "gap": False, "missing": 0}
        self.write_message(orjson.dumps({**joined, "online": []}))

    def acked(self, client_id: object, msg_id: int, room: str) -> None:
        """The sender's ``ack`` of message ``msg_id``."""
        ack = {"type": "ack", "client_id": client_id, "id": msg_id, "room": room}
        self.write_message(orjson.dumps(ack))

    def on_close(self) -> None:
        for room in self.rooms:
            ROOMS.get(room, set()).discard(self)


async def main(port: int) -> None:
    app = tornado.web.Application([(r"/ws", Socket), (r"/(?:api/)?(\w+).*", Json)])
    app.listen(port, "127.0.0.1", idle_connection_timeout=300)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8890)
    parser.add_argument("--no-nodelay", action="store_true", help="leave Nagle's algorithm on")
    args = parser.parse_args()
    NODELAY = not args.no_nodelay
    asyncio.run(main(args.port))
