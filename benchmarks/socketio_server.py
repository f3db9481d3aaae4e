"""The Socket.IO baseline: python-socketio's asyncio server doing the baseline's work.

Why not Socket.IO? This answers it with figures: the same job as
``baseline_server.py`` (no storage, no auth: the token is the name; rooms; the
room's next consecutive id; a broadcast to every socket of the room; an ack to
the sender) written as one would with python-socketio — ``enter_room``,
``emit(..., room=...)``, an ack callback's return value — on the same Tornado
stack as the baseline (``async_mode="tornado"``, TCP_NODELAY on, stdlib JSON as
shipped), so the difference between the two is Socket.IO's layer alone.

Wire (Engine.IO 4 over a WebSocket at ``/socket.io/?EIO=4&transport=websocket``):
the client sends ``40{"token": NAME}`` to connect; events ``42N["join",{"room":R}]``
and ``42N["send",{"room":R,"text":T,"client_id":C}]`` (N: the ack id); the server
acks ``43N[FRAME]`` with ``joined``/``ack`` frames and broadcasts
``42["msg",{"type":"message",...}]``: the baseline's frames inside Socket.IO packets.
Run: ``python -m benchmarks.socketio_server --port 8891``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import socketio
import tornado.web

from benchmarks.baseline_server import Json

LAST_ID: dict[str, int] = {}
USERS: dict[str, str] = {}


def make_server() -> socketio.AsyncServer:
    """The Socket.IO server with its three handlers (connect, join, send)."""
    sio = socketio.AsyncServer(async_mode="tornado")

    @sio.event
    async def connect(sid: str, environ: dict, auth: dict | None) -> bool:
        USERS[sid] = (auth or {}).get("token") or "?"
        return True

    @sio.event
    async def disconnect(sid: str, reason: str = "") -> None:
        USERS.pop(sid, None)

    @sio.event
    async def join(sid: str, frame: dict) -> dict:
        room = frame.get("room")
        await sio.enter_room(sid, room)
        return {"type": "joined", "room": room, "messages": [], "gap": False, "missing": 0}

    @sio.event
    async def send(sid: str, frame: dict) -> dict:
        room, cid = frame.get("room"), frame.get("client_id")
        LAST_ID[room] = msg_id = LAST_ID.get(room, 0) + 1
        out = {"type": "message", "room": room, "id": msg_id, "user": USERS.get(sid, "?")}
        out.update(text=frame["text"], ts=round(time.time(), 6), client_id=cid)
        await sio.emit("msg", out, room=room)
        return {"type": "ack", "client_id": cid, "id": msg_id, "room": room}

    return sio


def handler_class(sio: socketio.AsyncServer) -> type:
    """python-socketio's Tornado handler with TCP_NODELAY on, as the baseline has it."""
    base = socketio.get_tornado_handler(sio)

    class Handler(base):
        async def open(self, *args, **kwargs) -> None:
            self.set_nodelay(True)
            await super().open(*args, **kwargs)

    return Handler


async def main(port: int) -> None:
    sio = make_server()
    app = tornado.web.Application(
        [(r"/socket.io/", handler_class(sio)), (r"/(?:api/)?(\w+).*", Json)]
    )
    app.listen(port, "127.0.0.1", idle_connection_timeout=300)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8891)
    asyncio.run(main(parser.parse_args().port))
