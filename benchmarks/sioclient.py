"""The generator's Socket.IO protocol variant: Engine.IO 4 / Socket.IO 5 framing over the
same bare WebSocket client, so one generator drives chatroom, the baseline and
``benchmarks/socketio_server.py`` alike.

The Socket.IO server speaks the baseline's frames inside Socket.IO packets (see
``socketio_server.py``); this client unwraps them and hands the very bytes of the
inner frame to the generator's ``on_frame``, so the generator's checks (latency,
loss, duplicates, order, acks) run unchanged. Per message the unwrapping costs a
prefix test and one slice, no extra JSON parse.

Wire, per WebSocket text frame (one Engine.IO packet each)::

    server -> client   0{"sid":...,"pingInterval":...}  Engine.IO open: answer 40{"token":T}
                       40{"sid":...}                     connected: the generator's "hello"
                       44{...}                           connect refused: an "error" frame
                       42["msg",FRAME]                   a broadcast: FRAME goes on
                       43N[FRAME]                        the ack of event N: FRAME goes on
                       2                                 ping: answer 3 (pong)
    client -> server   42N["TYPE",FRAME]                 a chatroom frame as event TYPE, ack id N
"""

from __future__ import annotations

import orjson

from benchmarks.wsclient import WebSocketClient, encode_frame

_BROADCAST = b'42["msg",'
_ACK = b"43"
_CONNECTED = b'{"type":"hello"}'
_REFUSED = b'{"type":"error","code":"socketio_connect_error"}'


class SocketIOClient(WebSocketClient):
    """A ``WebSocketClient`` that speaks Socket.IO; ``send``/``send_raw`` take chatroom frames."""

    PATH = "/socket.io/?EIO=4&transport=websocket"

    def __init__(self, on_frame, token: str | None = None) -> None:
        super().__init__(self._on_packet, token)
        self.on_app_frame = on_frame
        self._ack_id = 0

    def _on_packet(self, payload: bytes, now: float) -> None:
        if payload.startswith(_BROADCAST):  # the hot path: one slice
            self.on_app_frame(payload[9:-1], now)
        elif payload.startswith(_ACK):
            self.on_app_frame(payload[payload.index(b"[") + 1 : -1], now)
        elif payload == b"2":
            self._write(encode_frame(b"3"))
        elif payload.startswith(b"0"):
            self._write(encode_frame(b"40" + orjson.dumps({"token": self.token})))
        elif payload.startswith(b"40"):
            self.on_app_frame(_CONNECTED, now)
        elif payload.startswith(b"44"):
            self.on_app_frame(_REFUSED, now)
        else:  # disconnect, binary events, ...: counted among the unexpected frames
            self.on_app_frame(orjson.dumps({"type": f"socketio {payload[:2].decode()}"}), now)

    def send(self, frame: dict) -> None:
        self.send_raw(orjson.dumps(frame))

    def send_raw(self, payload: bytes) -> None:
        """Send one chatroom frame (JSON bytes starting ``{"type":"...``) as an event."""
        self._ack_id += 1
        kind = payload[9 : payload.index(b'"', 9)]
        self._write(encode_frame(b'42%d["%b",%b]' % (self._ack_id, kind, payload)))


#: The generator's client class for each protocol (``LoadGenerator(protocol=...)``).
CLIENTS: dict[str, type[WebSocketClient]] = {
    "chatroom": WebSocketClient,
    "socketio": SocketIOClient,
}
