"""Outages and leaks, with real ``chatroom serve`` processes (SPEC §1, §4).

- Redis goes away under load and comes back: nothing acknowledged is lost or doubled.
- The embedded Redis is killed: chatroom restarts it on the same data, history intact.
- Passwords, tokens and session cookies never reach the log nor, in clear, the data dir.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
from pathlib import Path
from urllib.parse import quote_plus, urlencode

import orjson
import pytest
import redis.asyncio as aioredis
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from chatroom.embedded_redis import EmbeddedRedis
from tests.helpers import ChatClient, body, connect
from tests.processes import OPENED, ServeProcess, redis_pid, socket_on

pytestmark = [pytest.mark.timeout(90), pytest.mark.usefixtures("close_opened_sockets")]


class Bug(AssertionError):
    """What an xfail test here expects: a broken guarantee, not a broken setup."""


def embedded_redis_client(data_dir: Path) -> aioredis.Redis:
    """The test's own connection to a serve process's embedded Redis."""
    return aioredis.Redis(unix_socket_path=str(data_dir / "redis.sock"))


async def aof_written(data_dir: Path, timeout: float = 5) -> None:
    """Wait until the embedded Redis has written everything to its AOF (its buffer is empty)."""
    async with embedded_redis_client(data_dir) as client:
        deadline = time.monotonic() + timeout
        while (await client.info("persistence"))["aof_buffer_length"]:
            assert time.monotonic() < deadline, "Redis never wrote its AOF buffer"
            await asyncio.sleep(0.02)


async def wait_healthy(host: ServeProcess, timeout: float) -> float:
    """Seconds until /healthz says 200 again."""
    started = time.monotonic()
    while (await host.api.request("GET", "/healthz")).code != 200:
        assert time.monotonic() - started < timeout, (
            "chatroom did not recover\n" + (host.read_output()[-3000:])
        )
        await asyncio.sleep(0.1)
    return time.monotonic() - started


class SteadySender:
    """One socket that sends a message with a fresh client_id every ``interval`` seconds and
    records what the server answered to each (``ack`` with its id, or ``error``)."""

    def __init__(self, client: ChatClient, interval: float = 0.01) -> None:
        self.client = client
        self.interval = interval
        self.sent: list[str] = []
        self.sent_at: dict[str, float] = {}
        self.waited: dict[str, float] = {}  # client_id -> seconds until its answer
        self.acked: dict[str, int] = {}
        self.refused: dict[str, str] = {}  # client_id -> error code
        self.delivered: list[dict] = []
        self.running = True
        self._reader = asyncio.create_task(self._read())
        self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        i = 0
        while self.running:
            cid = f"m{i}"
            self.sent.append(cid)
            self.sent_at[cid] = time.monotonic()
            await self.client.send(f"steady {i}", client_id=cid)
            i += 1
            await asyncio.sleep(self.interval)

    async def _read(self) -> None:
        while (raw := await self.client.ws.read_message()) is not None:
            frame = orjson.loads(raw)
            if frame["type"] in ("ack", "error"):
                cid = frame.get("client_id")
                self.waited[cid] = time.monotonic() - self.sent_at[cid]
            if frame["type"] == "ack":
                assert frame["client_id"] not in self.acked, f"acked twice: {frame}"
                self.acked[frame["client_id"]] = frame["id"]
            elif frame["type"] == "error":
                assert "client_id" in frame, frame
                self.refused[frame["client_id"]] = frame["code"]
            elif frame["type"] == "message":
                self.delivered.append(frame)

    @property
    def answered(self) -> int:
        return len(self.acked) + len(self.refused)

    async def stop(self, timeout: float = 15) -> None:
        """Stop sending and wait until every send has its answer."""
        self.running = False
        await self._writer
        deadline = time.monotonic() + timeout
        while self.answered < len(self.sent):
            assert not self._reader.done(), f"socket closed: {self.client.ws.close_code}"
            assert time.monotonic() < deadline, (
                f"{len(self.sent) - self.answered} sends never answered"
            )
            await asyncio.sleep(0.05)


def stop_redis(redis: EmbeddedRedis, how: str) -> None:
    """SIGTERM: Redis writes its AOF and exits. SIGKILL: it dies on the spot; with
    ``appendfsync always`` whatever it acknowledged is in the AOF already."""
    if how == "SIGKILL":
        os.kill(redis.pid, signal.SIGKILL)
    redis.stop()  # reaps the killed process, or terminates and waits


@pytest.mark.parametrize(
    ("how", "down_for"),
    [
        ("SIGTERM", 1.0),
        ("SIGKILL", 1.0),
        # Longer than the server's own retries (3 s): sends are refused with unavailable.
        ("SIGTERM", 4.0),
    ],
)
async def test_external_redis_restart_under_load_loses_no_acknowledged_message(
    tmp_path, serve_processes, how, down_for
):
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = EmbeddedRedis(redis_dir, fsync="always")  # AOF, fsync on every write
    redis.start()
    sender: SteadySender | None = None
    try:
        host = serve_processes(
            tmp_path / "host",
            "--redis-url",
            redis.url,
            "--send-burst",
            "100000",
            "--history-size",
            "10000",
        )
        await host.ready()
        token = await host.api.user("alice")
        sender = SteadySender(await socket_on(host, token, "alice"))

        await asyncio.sleep(1.0)
        before = len(sender.acked)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, stop_redis, redis, how)
        down_at = len(sender.sent)
        await asyncio.sleep(down_for)
        await loop.run_in_executor(None, redis.start)  # the same directory, the same AOF
        restarted = time.monotonic()
        await wait_healthy(host, timeout=20)
        acked_at_restart = len(sender.acked)
        # Keep sending until messages are acknowledged again, then a little longer.
        recovery = None
        while len(sender.acked) < acked_at_restart + 50:
            if recovery is None and len(sender.acked) > acked_at_restart:
                recovery = time.monotonic() - restarted
            assert time.monotonic() < restarted + 20, "no acks after Redis came back"
            await asyncio.sleep(0.01)
        await sender.stop()

        response = await host.api.request("GET", "/api/rooms/lobby/messages", token=token)
        assert response.code == 200, response.body
        stored = body(response)["messages"]
        stored_ids = [m["id"] for m in stored]
        stored_cids = [m["client_id"] for m in stored]
        lost = [cid for cid in sender.acked if cid not in stored_cids]
        doubled = sorted({cid for cid in stored_cids if stored_cids.count(cid) > 1})
        unavailable = [c for c, code in sender.refused.items() if code == "unavailable"]
        stored_anyway = [cid for cid in unavailable if cid in stored_cids]
        longest = max(sender.waited.values())
        print(
            f"redis {how}, down {down_for:.0f}s: {len(sender.sent)} sent, "
            f"{len(sender.acked)} acked ({before} before the stop at send #{down_at}), "
            f"{len(unavailable)} unavailable, "
            f"{len(stored)} stored, {len(lost)} acked-but-lost, {len(doubled)} doubled, "
            f"{len(stored_anyway)} refused-but-stored; longest wait for an answer "
            f"{longest:.2f}s; acks again {recovery or 0:.2f}s after the start"
        )
        assert set(sender.refused.values()) <= {"unavailable"}, sender.refused
        # The outage was felt: sends were refused, or held until Redis was back.
        assert unavailable or longest > 0.5, "Redis was down, yet nothing noticed"
        if down_for > 3:
            assert unavailable, "a 4 s outage and not one send was refused"
        assert not lost, f"acknowledged, then lost: {lost[:10]}"
        assert not doubled, f"stored twice: {doubled[:10]}"
        assert stored_ids == list(range(1, len(stored) + 1)), "ids not dense"
        for cid, message_id in sender.acked.items():
            assert stored[message_id - 1]["client_id"] == cid, "ack id is not the stored id"
        assert set(stored_cids) <= set(sender.sent)
        # (SPEC §3 also says ``unavailable`` means NOT stored; a send in flight when Redis
        # goes can be stored and still refused: reported above, pinned down below.)

        # SPEC §4: every acknowledged message reaches the connected member once, in order
        # (what the listener missed while Redis was away comes from the history).
        deadline = time.monotonic() + 15
        while len(sender.delivered) < len(stored) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert [m["id"] for m in sender.delivered] == stored_ids
    finally:
        if sender is not None:
            sender.client.close()
        redis.stop()


class ReplyDroppingProxy:
    """A TCP proxy in front of a real Redis that, once armed, lets one request through
    and drops Redis's reply with the connection: a network blip at the worst moment."""

    def __init__(self, upstream: Path) -> None:
        self.upstream = upstream
        self.marker: bytes | None = None
        self.dropped = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, client_r, client_w) -> None:
        self._handlers.add(asyncio.current_task())
        upstream_r, upstream_w = await asyncio.open_unix_connection(str(self.upstream))
        self._writers += [client_w, upstream_w]
        doomed = asyncio.Event()

        async def requests() -> None:
            while data := await client_r.read(65536):
                if self.marker is not None and self.marker in data:
                    self.marker = None
                    doomed.set()
                upstream_w.write(data)
                await upstream_w.drain()

        async def replies() -> None:
            while data := await upstream_r.read(65536):
                if doomed.is_set():  # executed by Redis; the answer never arrives
                    self.dropped.set()
                    return
                client_w.write(data)
                await client_w.drain()

        pumps = [asyncio.create_task(requests()), asyncio.create_task(replies())]
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for writer in (client_w, upstream_w):
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True), 5)
        await self.server.wait_closed()


@pytest.fixture
async def behind_proxy(tmp_path, serve_processes):
    """A serve process whose Redis is behind a ReplyDroppingProxy; alice's socket in lobby
    has sent "first" (id 1): (host, token, alice, proxy)."""
    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    redis = EmbeddedRedis(redis_dir, fsync="always")
    redis.start()
    proxy = ReplyDroppingProxy(redis.socket_path)
    host = serve_processes(tmp_path / "host", "--redis-url", await proxy.start())
    alice = None
    try:
        await host.ready()
        token = await host.api.user("alice")
        alice = await socket_on(host, token, "alice")
        await alice.send("first", client_id="c1")
        await alice.next("ack", client_id="c1")
        yield host, token, alice, proxy
    finally:
        if alice is not None:
            alice.close()
        host.kill()
        await proxy.stop()
        redis.stop()


async def test_a_send_whose_reply_is_lost_is_acknowledged_once(behind_proxy):
    """Redis stores the message but its answer is lost with the connection: the server
    settles it with the send's client_id (SPEC §4: stored once, acked, delivered once)."""
    host, token, alice, proxy = behind_proxy
    proxy.marker = b"doomed"
    await alice.send("doomed", client_id="c2")
    answer = await alice.answer()
    assert proxy.dropped.is_set(), "the proxy never saw the send"
    if answer["type"] == "error":  # the client's own retry must settle it
        assert answer["code"] == "unavailable", answer
        await alice.send("doomed", client_id="c2")
        answer = await alice.answer()
    assert answer["type"] == "ack" and answer["id"] == 2, answer
    history = body(await host.api.request("GET", "/api/rooms/lobby/messages", token=token))
    assert [m["client_id"] for m in history["messages"]] == ["c1", "c2"]
    delivered = [await alice.next("message") for _ in range(2)]
    assert [m["id"] for m in delivered] == [1, 2]
    await alice.nothing("message")


async def test_unavailable_means_the_message_was_not_stored(behind_proxy):
    host, token, alice, proxy = behind_proxy
    proxy.marker = b"doomed"
    await alice.send("doomed")  # client_id is optional (SPEC §3)
    answer = await alice.answer()
    assert proxy.dropped.is_set(), "the proxy never saw the send"
    history = body(await host.api.request("GET", "/api/rooms/lobby/messages", token=token))
    texts = [m["text"] for m in history["messages"]]
    if answer["type"] == "ack":
        assert texts == ["first", "doomed"]
    else:
        assert answer["code"] == "unavailable", answer
        if texts != ["first"]:
            raise Bug(f"answered unavailable, yet stored: {texts}")


@pytest.mark.parametrize("processes", [1, 2])
async def test_killed_embedded_redis_is_restarted_with_its_data(
    tmp_path, serve_processes, processes
):
    data_dir = tmp_path / "data"
    host = serve_processes(data_dir, "--processes", str(processes))
    await host.ready()
    token = await host.api.user("alice")
    alice = await socket_on(host, token, "alice")
    for i in range(5):
        await alice.send(f"before {i}", client_id=f"b{i}")
        await alice.next("ack", client_id=f"b{i}")
    old_pid = redis_pid(data_dir)
    assert old_pid is not None
    # Only what Redis has written to its AOF can survive a SIGKILL; that an ack may come
    # before the write is another test's subject.
    await aof_written(data_dir)

    os.kill(old_pid, signal.SIGKILL)
    started = time.monotonic()
    while (new_pid := redis_pid(data_dir)) in (None, old_pid):
        assert time.monotonic() - started < 10, (
            "the embedded Redis was not restarted\n" + host.read_output()[-3000:]
        )
        await asyncio.sleep(0.1)
    await wait_healthy(host, timeout=10)
    took = time.monotonic() - started
    print(f"embedded redis ({processes} process(es)) back after {took:.1f}s (pid {new_pid})")
    assert "restart" in host.read_output().lower(), "the restart was not logged"

    history = body(await host.api.request("GET", "/api/rooms/lobby/messages", token=token))
    assert [m["client_id"] for m in history["messages"]] == [f"b{i}" for i in range(5)]
    # The chat works again: a new socket (or the old one) sends and stores id 6.
    again = await socket_on(host, token, "alice")
    deadline = time.monotonic() + 15
    while True:
        await again.send("after", client_id="a1")
        answer = await again.answer()
        if answer["type"] == "ack":
            break
        assert answer["code"] == "unavailable", answer
        assert time.monotonic() < deadline, "sends still refused after the restart"
        await asyncio.sleep(0.2)
    assert answer["id"] == 6
    alice.close()
    again.close()


#: A Lua script that makes Redis write (and then fsync in the background) a big value:
#: the disk is busy, as under real load, without sending 150 MB over the socket.
FSYNC_LOAD = "redis.call('SET', KEYS[1], string.rep('x', tonumber(ARGV[1])))"


# --durability fast (everysec) can lose the last second or two of acknowledged
# messages when Redis itself is killed mid-fsync (Redis postpones its AOF write
# while a background fsync runs, yet replies); docs/configuration.md says so.
# Only strict promises that no acknowledged message is lost.
@pytest.mark.parametrize(
    "durability",
    [
        "strict",
    ],
)
async def test_a_redis_crash_right_after_an_ack_loses_nothing(
    tmp_path, serve_processes, durability
):
    data_dir = tmp_path / "data"
    host = serve_processes(data_dir, "--durability", durability)
    await host.ready()
    token = await host.api.user("alice")
    alice = await socket_on(host, token, "alice")
    try:
        async with embedded_redis_client(data_dir) as direct:
            for attempt in range(6):
                # Redis starts its once-a-second background fsync on the first write of
                # a new second: make that write a big one, then send while it runs.
                await asyncio.sleep(1.1 - time.time() % 1)
                await direct.eval(FSYNC_LOAD, 1, "fsync-load", 150_000_000)
                await alice.send(f"acked {attempt}", client_id=f"a{attempt}")
                await alice.next("ack", client_id=f"a{attempt}")
                if durability == "strict":
                    break  # every write is fsynced before its reply: kill at once
                if (await direct.info("persistence"))["aof_buffer_length"]:
                    break  # acknowledged, not yet written to the AOF
            else:
                pytest.skip("the disk fsynced too fast to catch Redis postponing a write")
            os.kill(redis_pid(data_dir), signal.SIGKILL)
        started = time.monotonic()
        while redis_pid(data_dir) is None or not (data_dir / "redis.sock").exists():
            assert time.monotonic() - started < 10, "the embedded Redis was not restarted"
            await asyncio.sleep(0.05)
        await wait_healthy(host, timeout=10)
        history = body(await host.api.request("GET", "/api/rooms/lobby/messages", token=token))
        kept = [m["client_id"] for m in history["messages"]]
        if kept != [f"a{i}" for i in range(attempt + 1)]:
            raise Bug(f"acknowledged, then lost: {kept}")
    finally:
        alice.close()


PASSWORD = "Zebra-Passphrase-\u00e9t\u00e9-7781"
WRONG_PASSWORD = "Quokka-Wrong-Guess-4242"
SHORT_PASSWORD = "Gnu-77"  # too short: refused, must not be logged either


def set_cookies(response) -> dict[str, str]:
    cookies = {}
    for header in response.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        cookies[name.strip()] = rest.split(";")[0].strip().strip('"')
    return cookies


async def test_secrets_never_reach_the_log_or_the_data_dir_in_clear(tmp_path, serve_processes):
    data_dir = tmp_path / "data"
    host = serve_processes(data_dir, "--debug")  # the most verbose logging there is
    await host.ready()
    api, base = host.api, f"http://127.0.0.1:{host.port}"
    secrets: dict[str, str] = {}
    for what, password in (
        ("password", PASSWORD),
        ("wrong password", WRONG_PASSWORD),
        ("short password", SHORT_PASSWORD),
    ):
        secrets[what] = password
        secrets[f"{what} (form-encoded)"] = quote_plus(password)
        secrets[f"{what} (JSON-escaped)"] = json.dumps(password)[1:-1]

    assert (await api.register("alice", PASSWORD)).code == 201
    assert (await api.register("mallory", SHORT_PASSWORD)).code == 400
    assert (await api.request(
        "POST", "/api/login", {"username": "alice", "password": WRONG_PASSWORD}
    )).code == 401  # fmt: skip
    login = await api.request("POST", "/api/login", {"username": "alice", "password": PASSWORD})
    assert login.code == 200, login.body
    token = body(login)["token"]
    cookie = set_cookies(login)["chatroom_session"]
    secrets["token"], secrets["api cookie"] = token, cookie
    secrets["token (as in the cookie)"] = base64.b64encode(token.encode()).decode()

    # The HTML forms: register bob, log in with the form, use the cookie on a socket.
    http = AsyncHTTPClient()
    page = await http.fetch(f"{base}/login", raise_error=False)
    xsrf = set_cookies(page)["_xsrf"]

    async def form(path: str, fields: dict, cookies: dict) -> object:
        return await http.fetch(
            HTTPRequest(
                base + path,
                method="POST",
                body=urlencode({**fields, "_xsrf": xsrf}),
                headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
                follow_redirects=False,
            ),
            raise_error=False,
        )

    registered = await form("/register", {"username": "bob", "password": PASSWORD}, {"_xsrf": xsrf})
    assert registered.code in (302, 303), registered.code
    secrets["register cookie"] = set_cookies(registered)["chatroom_session"]
    failed = await form("/login", {"username": "bob", "password": WRONG_PASSWORD}, {"_xsrf": xsrf})
    assert failed.code == 401
    logged_in = await form("/login", {"username": "bob", "password": PASSWORD}, {"_xsrf": xsrf})
    assert logged_in.code in (302, 303), logged_in.code
    form_cookie = set_cookies(logged_in)["chatroom_session"]
    secrets["form cookie"] = form_cookie

    by_token = await socket_on(host, token, "alice")
    ws = await connect(
        host.ws_url, headers={"Cookie": f"chatroom_session={form_cookie}", "Origin": base}
    )
    by_cookie = ChatClient(ws, "bob")
    OPENED.append(by_cookie)
    assert (await by_cookie.next("hello"))["user"] == "bob"
    await by_cookie.join("lobby")
    await by_token.send("hello bob", client_id="h1")
    assert (await by_cookie.next("message"))["text"] == "hello bob"
    # A forged and a revoked credential, so the refusal paths log too.
    with pytest.raises(HTTPClientError):
        await connect(host.ws_url, token + "x")
    assert (await api.request("POST", "/api/logout", token=token)).code == 200
    with pytest.raises(HTTPClientError):
        await connect(host.ws_url, token)
    cookies = {"_xsrf": xsrf, "chatroom_session": form_cookie}
    assert (await form("/logout", {}, cookies)).code in (302, 303)
    by_token.close()
    by_cookie.close()
    await asyncio.sleep(0.2)
    assert host.stop() == 0  # flushes logs, Redis's AOF and SQLite

    log = host.read_output()
    assert "serving on" in log  # the log is the real one
    for what, secret in secrets.items():
        assert secret not in log, f"the {what} is in the server log"
    leaks = []
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert any(p.name == "chatroom.db" for p in files) and len(files) > 3, files
    for path in files:
        data = path.read_bytes()
        for what, secret in secrets.items():
            if secret.encode() in data:
                leaks.append(f"{what} in {path.relative_to(data_dir)}")
    assert not leaks, leaks
    names = sorted(str(p.relative_to(data_dir)) for p in files)
    print(f"checked {len(secrets)} secrets in the log and the data dir's files {names}")
