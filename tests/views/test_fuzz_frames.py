"""Property-based fuzzing of WebSocket frames (SPEC §3) against the real server.

Hypothesis generates the frames up front (an inner ``@given`` function collects its
examples into a list); the async test then sends them all over ONE socket to ONE
real server. After every fuzzed frame the test sends a ``ping``: the replies up to
its ``pong`` are the fuzzed frame's answer, so each frame is judged on its own
against an oracle written from SPEC §3 (not from the implementation):

- every frame gets the reply the protocol promises (``error`` with the right code,
  ``ack``, ``joined``, ``pong``, or nothing for a valid ``leave``/``typing``/``read``);
- the socket is never closed (every frame stays under the 64 KiB limit);
- every acknowledged message is stored once, with the next consecutive id, verbatim;
  nothing else is stored; a valid ``send`` after the fuzzing still works.

Set ``CHATROOM_FUZZ_SEED`` to replay a failing run (the seed is in the failure).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.helpers import READ_TIMEOUT, connect

pytestmark = pytest.mark.timeout(60)

ME = "fuzzer"
#: Registered users; "carol" and "dave" own a DM the fuzzer may not see.
USERS = {ME, "bob", "carol", "dave"}
#: Public rooms that exist (lobby, plus one the test creates).
ROOMS = {"lobby", "fuzzroom"}
MAX_TEXT = 4000
MAX_ID = 2**53
#: Frames stay well under the 64 KiB limit: fuzzing must never trip the 1009 close.
MAX_FRAME_BYTES = 60_000
#: Frames sent before the replies are read (each followed by its delimiting ping).
BATCH = 50

# The SPEC's patterns, written here independently of the implementation.
ROOM_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
DM_RE = re.compile(r"dm:([a-z0-9_.-]{1,32}):([a-z0-9_.-]{1,32})")
FRAME_TYPES = ("join", "leave", "send", "typing", "read", "ping")
#: Server frames that come on their own (fan-out), not as the answer to a frame.
EVENT_TYPES = ("message", "presence", "typing")

FUZZ_SEED = int(os.environ.get("CHATROOM_FUZZ_SEED") or random.randrange(2**32))


# -- strategies ----------------------------------------------------------------

HUGE_INTS = st.sampled_from(
    [0, 1, -1, MAX_ID, MAX_ID + 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30]
)
INTS = st.integers() | HUGE_INTS
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.5, 1.0, -0.0])
CONTROL = st.characters(max_codepoint=0x1F) | st.sampled_from(
    "\x7f\x85\u00a0\u2028\u2029\u200b\u200e\u202e\ufeff\ufffe\uffff"
)
SURROGATE = st.characters(categories=["Cs"])
ANY_CHAR = st.characters() | CONTROL | SURROGATE
SCALARS = st.none() | st.booleans() | INTS | FLOATS | st.text(ANY_CHAR, max_size=20)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
HOSTILE_TEXTS = st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        " ",
        "\n",
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "\\u0000",
        "\ud800",
        "x\udfff",
        "\ud83d\ude00",  # two code points here; one (an emoji) once JSON-decoded
        "\ude00\ud83d",  # a reversed pair: two lone surrogates
        "\U0001f600" * 3,
        "\u202eevil",
        "x" * MAX_TEXT,
        "x" * (MAX_TEXT + 1),
        "\U0001f600" * MAX_TEXT,
        "\x01" * MAX_TEXT,
        "\x01" * (MAX_TEXT - 1) + "\x00",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=40),
    st.text(CONTROL, min_size=1, max_size=20),
    st.text(ANY_CHAR, max_size=30),
    HOSTILE_TEXTS,
    st.builds(
        lambda n, tail: "y" * n + tail,
        st.integers(MAX_TEXT - 8, MAX_TEXT + 2),
        st.text(ANY_CHAR, max_size=6),
    ),
)
ROOM_NAMES = st.one_of(
    st.sampled_from(
        [
            "lobby",
            "fuzzroom",
            "nowhere",
            "dm:bob:fuzzer",
            "dm:fuzzer:fuzzer",
            "dm:fuzzer:bob",  # not sorted
            "dm:fuzzer:nobody",
            "dm:carol:dave",  # someone else's
            "dm:bob:fuzzer:x",
            "dm:",
            "Lobby",
            "lobby\n",
            " lobby",
            "lobby ",
            "",
            "-x",
            "a" * 64,
            "a" * 65,
            "lobby\x00",
        ]
    ),
    st.from_regex(ROOM_RE, fullmatch=True),
    st.text(ANY_CHAR, max_size=12),
)
ROOM_VALUES = ROOM_NAMES | JSON_VALUES
CLIENT_IDS = st.one_of(
    st.none(),
    st.text(max_size=6),  # short: retries of the same client_id happen often
    st.text(ANY_CHAR, max_size=70),
    st.sampled_from(["", "c" * 64, "c" * 65, "nul\x00", "\ud800"]),
    JSON_VALUES,
)
IDS = st.none() | INTS | FLOATS | st.booleans() | st.text(max_size=5) | JSON_VALUES
FRAME_TYPE_VALUES = st.one_of(
    st.sampled_from(FRAME_TYPES),
    st.sampled_from(["Send", "SEND", "send ", "pong", "hello", "joined", "message", "error", ""]),
    JSON_VALUES,
)
EXTRA_FIELDS = st.dictionaries(
    st.text(max_size=6).filter(lambda k: k not in ("type", "room", "text", "client_id")),
    JSON_VALUES,
    max_size=2,
)


def mostly(usual: st.SearchStrategy, anything: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` three times in four, else ``anything``: enough valid frames get through."""
    return st.integers(0, 3).flatmap(lambda pick: usual if pick else anything)


@st.composite
def typed_frames(draw: Callable) -> dict:
    """A dict with a known (or random) ``type`` and random values for every field."""
    frame: dict[str, Any] = {"type": draw(mostly(st.sampled_from(FRAME_TYPES), FRAME_TYPE_VALUES))}
    usual_rooms = st.sampled_from(["lobby", "fuzzroom", "dm:bob:fuzzer"])
    small_ids = st.none() | st.integers(0, 60)
    for name, values in (
        ("room", mostly(usual_rooms, ROOM_VALUES)),
        ("text", mostly(st.text(min_size=1, max_size=40) | TEXTS, JSON_VALUES)),
        ("client_id", mostly(st.none() | st.text(max_size=6), CLIENT_IDS)),
        ("since", mostly(small_ids, IDS)),
        ("id", mostly(small_ids, IDS)),
    ):
        if draw(st.integers(0, 9)):
            frame[name] = draw(values)
    frame.update(draw(EXTRA_FIELDS))
    return frame


#: One valid frame of each type; the "wrong types" test breaks one field of one.
VALID_FRAMES = [
    {"type": "send", "room": "lobby", "text": "hello", "client_id": "c"},
    {"type": "send", "room": "fuzzroom", "text": "hi"},
    {"type": "join", "room": "lobby"},
    {"type": "join", "room": "fuzzroom", "since": 1},
    {"type": "leave", "room": "fuzzroom"},
    {"type": "typing", "room": "lobby"},
    {"type": "read", "room": "lobby", "id": 1},
    {"type": "ping"},
]
WRONG_TYPED = st.one_of(
    st.none(),
    st.booleans(),
    INTS,
    FLOATS,
    st.lists(JSON_VALUES, max_size=3),
    st.dictionaries(st.text(max_size=4), JSON_VALUES, max_size=3),
    st.sampled_from(["", "lobby ", "1", "true", "null", "[]"]),
)


@st.composite
def wrong_typed_frames(draw: Callable) -> dict:
    frame = dict(draw(st.sampled_from(VALID_FRAMES)))
    victim = draw(st.sampled_from([*frame, "since", "id", "client_id"]))
    if draw(st.integers(0, 9)) == 0:
        frame.pop(victim, None)  # a missing field
    else:
        frame[victim] = draw(WRONG_TYPED)
    return frame


JSON_ESCAPES = st.sampled_from(
    [
        "a",
        " ",
        "\U0001f600",
        "\\ud800",
        "\\udfff",
        "\\ud83d\\ude00",
        "\\ude00\\ud83d",
        "\\ud83d",
        "\\u0000",
        "\\u0001",
        "\\u001f",
        "\\n",
        '\\"',
        "\\\\",
        "\\/",
        "\\x41",  # not a JSON escape
        "\\u12",  # truncated
        "\\",
        "\t",  # a raw control character: not allowed in a JSON string
        "\x00",
        '"',
    ]
)
RAW_SNIPPETS = st.sampled_from(
    [
        "",
        " ",
        "{",
        "}",
        "[]",
        "{}",
        "null",
        "true",
        "1",
        '"ping"',
        "NaN",
        "Infinity",
        "-Infinity",
        "1e400",
        '{"type": "ping"',
        '{"type": "ping"}}',
        '{"type": "ping"} {"type": "ping"}',
        "{'type': 'ping'}",
        '{"type": "ping",}',
        '{type: "ping"}',
        '\ufeff{"type": "ping"}',
        ' \t\r\n{"type": "ping"} \n',
        '{"type": "ping", "type": "send"}',
        '{"type": "send", "type": "ping"}',
        '{"type": "ping", "x": 1e400}',
        '{"type": "ping", "x": NaN}',
        '{"type": "ping", "x": ' + "[" * 200 + "]" * 200 + "}",
        '{"type": "ping", "x": ' + "[" * 3000 + "]" * 3000 + "}",
        "[" * 3000,
        '{"type": "read", "room": "lobby", "id": 1.0}',
        '{"type": "read", "room": "lobby", "id": 1e2}',
        '{"type": "join", "room": "lobby", "since": 9007199254740992}',
        '{"type": "join", "room": "lobby", "since": 9007199254740993}',
        '{"type": "join", "room": "lobby", "since": 18446744073709551616}',
        '{"type": "join", "room": "lobby", "since": -0}',
    ]
)
RAW_TEXT = st.one_of(
    st.text(max_size=80),
    RAW_SNIPPETS,
    st.builds(
        lambda room, parts: '{"type": "send", "room": "' + room + '", "text": "' + parts + '"}',
        st.sampled_from(["lobby", "fuzzroom"]),
        st.lists(JSON_ESCAPES, max_size=8).map("".join),
    ),
    st.builds(
        lambda parts: '{"type": "ping", "x": "' + parts + '"}',
        st.lists(JSON_ESCAPES, max_size=6).map("".join),
    ),
)


def collect(strategy: st.SearchStrategy, count: int) -> list:
    """``count`` examples of ``strategy``, drawn by Hypothesis (seeded: replayable)."""
    examples: list = []

    @seed(FUZZ_SEED)
    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def gather(example: Any) -> None:
        examples.append(example)

    gather()
    return examples


# -- the oracle ----------------------------------------------------------------


def has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


def numbers_in(value: Any) -> list:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for item in value for n in numbers_in(item)]
    return []


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


UNPARSEABLE = object()


@dataclass
class Case:
    """One fuzzed frame: what goes on the wire and what a JSON parser makes of it."""

    raw: str | bytes
    view: Any  # the decoded JSON (Python's strict parser), or UNPARSEABLE
    source: str

    @classmethod
    def of_value(cls, value: Any, source: str, ascii_only: bool = True) -> Case:
        has_lone = any(has_surrogate(s) for s in strings_in(value))
        raw = json.dumps(value, ensure_ascii=ascii_only or has_lone, allow_nan=False)
        return cls.of_text(raw, source)

    @classmethod
    def of_text(cls, raw: str, source: str) -> Case:
        def refuse(constant: str) -> Any:
            raise ValueError(constant)

        try:
            view = json.loads(raw, parse_constant=refuse)
        except (ValueError, RecursionError):
            view = UNPARSEABLE
        return cls(raw, view, source)

    def __repr__(self) -> str:
        shown = repr(self.raw)
        if len(shown) > 300:
            shown = f"{shown[:200]}...({len(shown)} chars)...{shown[-60:]}"
        return f"<{self.source} frame {shown}>"

    @property
    def size(self) -> int:
        return len(self.raw if isinstance(self.raw, bytes) else self.raw.encode())


@dataclass
class Expectation:
    """What the protocol allows as the answer to one frame.

    ``must`` holds the error codes of checks the frame certainly fails (then an
    ``error`` with one of ``must | may`` is required); ``may`` the codes of checks
    where the SPEC leaves room (the frame may be refused with one of them, or
    succeed with ``success``: "pong", "joined", "ack" or "nothing").
    """

    success: str
    must: set[str] = field(default_factory=set)
    may: set[str] = field(default_factory=set)


def room_codes(room: Any) -> set[str]:
    """Why ``room`` cannot be used by the fuzzer (empty: it can)."""
    if not isinstance(room, str):
        return {"bad_request"}
    if ROOM_RE.fullmatch(room):
        return set() if room in ROOMS else {"not_found"}
    dm = DM_RE.fullmatch(room)
    if dm is None:
        return {"bad_request"}
    first, second = dm.groups()
    if ME not in (first, second):
        return {"forbidden"}
    if first > second:
        return {"not_found"}
    other = second if first == ME else first
    return set() if other in USERS else {"not_found"}


def id_codes(value: Any, required: bool) -> set[str]:
    if value is None and not required:
        return set()
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID
    return set() if ok else {"bad_request"}


def expect(case: Case) -> Expectation:
    frame = case.view
    if frame is UNPARSEABLE or not isinstance(frame, dict):
        return Expectation("nothing", must={"bad_request"})
    kind = frame.get("type")
    room = frame.get("room")
    if not isinstance(kind, str) or kind not in FRAME_TYPES:
        result = Expectation("nothing", must={"bad_request"})
    elif kind == "ping":
        result = Expectation("pong")
    elif kind == "join":
        result = Expectation("joined", must=id_codes(frame.get("since"), False) | room_codes(room))
    elif kind == "leave":
        codes = room_codes(room)
        # leave only needs a well-formed name; refusing an unknown one is allowed too.
        result = Expectation("nothing", must=codes & {"bad_request"}, may=codes)
    elif kind == "typing":
        result = Expectation("nothing", must=room_codes(room))
    elif kind == "read":
        result = Expectation("nothing", must=id_codes(frame.get("id"), True) | room_codes(room))
    else:  # send
        result = Expectation("ack", must=room_codes(room))
        text = frame.get("text")
        if not isinstance(text, str) or not text:
            result.must.add("bad_request")
        else:
            if len(text) > MAX_TEXT:
                result.must.add("too_long")
            if "\x00" in text or has_surrogate(text):
                result.must.add("bad_request")
        cid = frame.get("client_id")
        if cid is not None:
            if not isinstance(cid, str) or len(cid) > 64:
                result.must.add("bad_request")
            elif not cid or "\x00" in cid or has_surrogate(cid):
                result.may.add("bad_request")  # the SPEC does not say; refusing is fine
    # What a strict JSON parser may refuse although Python's accepts it.
    strings = strings_in(frame)
    if any(has_surrogate(s) for s in strings) or depth(frame) > 500:
        result.may.add("bad_request")
    if any(isinstance(n, float) and abs(n) == float("inf") for n in numbers_in(frame)):
        result.may.add("bad_request")
    return result


# -- the session ---------------------------------------------------------------


@dataclass
class Stored:
    room: str
    id: int
    text: str
    client_id: str | None


class FuzzSession:
    """One socket: sends cases, reads every frame at once, checks answers with the oracle."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.replies: asyncio.Queue = asyncio.Queue()
        self.events: list[dict] = []
        self.frames_sent = 0  # fuzzed frames, plus one delimiting ping each
        self.fuzzed = 0
        self.outcomes: dict[str, int] = {}
        self.stored: dict[str, list[Stored]] = {}  # room -> messages, by id
        self.retries: dict[tuple[str, str], int] = {}  # (room, client_id) -> id
        self.history_sent: set[str] = set()  # rooms whose full history this socket got
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while (raw := await self.ws.read_message()) is not None:
            frame = orjson.loads(raw)
            if frame["type"] in EVENT_TYPES:
                self.events.append(frame)
            else:
                self.replies.put_nowait(frame)
        self.replies.put_nowait(None)

    async def reply(self, case: Case | None = None) -> dict:
        try:
            frame = await asyncio.wait_for(self.replies.get(), READ_TIMEOUT)
        except asyncio.TimeoutError:
            raise AssertionError(f"no answer to {case!r} (seed {FUZZ_SEED})") from None
        assert frame is not None, (
            f"the server closed the socket ({self.ws.close_code} {self.ws.close_reason}) "
            f"after {case!r} (seed {FUZZ_SEED})"
        )
        return frame

    async def _send(self, case: Case) -> None:
        await self.ws.write_message(case.raw, binary=isinstance(case.raw, bytes))
        self.frames_sent += 1

    async def run(self, cases: list[Case]) -> None:
        for start in range(0, len(cases), BATCH):
            batch = [c for c in cases[start : start + BATCH] if c.size <= MAX_FRAME_BYTES]
            self.fuzzed += len(batch)
            for case in batch:
                await self._send(case)
                await self._send(Case('{"type":"ping"}', {"type": "ping"}, "delimiter"))
            for case in batch:
                await self.judge(case)

    async def judge(self, case: Case) -> None:
        expectation = expect(case)
        where = f"{case!r} (seed {FUZZ_SEED})"
        first = await self.reply(case)
        if first["type"] == "error":
            allowed = expectation.must | expectation.may
            assert first["code"] in allowed, f"{first} answers {where}; allowed {allowed}"
            assert isinstance(first["message"], str) and first["message"], first
            self._check_echo(case, first)
            outcome = f"error:{first['code']}"
            first = await self.reply(case)
        else:
            assert not expectation.must, f"{first} answers {where}; expected {expectation.must}"
            outcome = expectation.success
            if expectation.success != "nothing":
                assert first["type"] == expectation.success, f"{first} answers {where}"
                self._check_success(case, first)
                first = await self.reply(case)
        assert first == {"type": "pong"}, f"{first}: a second answer to {where}"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @staticmethod
    def _check_echo(case: Case, error: dict) -> None:
        """An error names the ``room`` and ``client_id`` of the frame it answers."""
        frame = case.view
        if not isinstance(frame, dict) or "bad_request" in expect(case).may:
            return  # not an object, or one a strict parser may refuse as a whole
        for name in ("room", "client_id"):
            value = frame.get(name)
            if isinstance(value, str) and not has_surrogate(value):
                assert error.get(name) == value, f"{error} does not echo {name} of {case!r}"
        if error["code"] == "rate_limited":
            assert error["retry_after"] > 0

    def _check_success(self, case: Case, answer: dict) -> None:
        frame = case.view
        room = frame.get("room")
        if answer["type"] == "ack":
            cid = frame.get("client_id")
            assert answer["room"] == room and answer["client_id"] == cid, (answer, case)
            history = self.stored.setdefault(room, [])
            original = self.retries.get((room, cid)) if cid is not None else None
            if original is not None:
                assert answer["id"] == original, f"a retry was stored again: {answer} {case!r}"
                return
            assert answer["id"] == len(history) + 1, f"ids not consecutive: {answer} {case!r}"
            history.append(Stored(room, answer["id"], frame["text"], cid))
            if cid is not None:
                self.retries[(room, cid)] = answer["id"]
        elif answer["type"] == "joined":
            assert answer["room"] == room, (answer, case)
            since = frame.get("since") or 0
            kept = self.stored.get(room, [])
            if frame.get("since") is None and room in self.history_sent:
                # A room's full history goes to a socket once (SPEC §10): a later
                # join without since gets only what this socket does not have yet.
                since = len(kept) - len(answer["messages"])
            self.history_sent.add(room)
            expected = kept[since:]
            assert [(m["id"], m["text"]) for m in answer["messages"]] == [
                (m.id, m.text) for m in expected
            ], f"joined history differs after {case!r}"
            assert (answer["gap"], answer["missing"]) == (False, 0), answer

    def check_events(self) -> None:
        """Every relayed ``message`` is an acknowledged one, verbatim."""
        for event in self.events:
            if event["type"] != "message":
                continue
            kept = self.stored.get(event["room"], [])
            assert 1 <= event["id"] <= len(kept), f"relayed but never acknowledged: {event}"
            stored = kept[event["id"] - 1]
            assert (event["text"], event.get("client_id")) == (stored.text, stored.client_id)


@pytest.fixture
async def fuzz(app_factory):
    """ONE server (every message of the test retained) and ONE socket of the fuzzer."""
    app = await app_factory(send_burst=100_000, history_size=10_000, joins_per_minute=100_000)
    token = await app.api.user(ME)
    for name in USERS - {ME}:
        await app.api.user(name)
    created = await app.api.request("POST", "/api/rooms", {"name": "fuzzroom"}, token=token)
    assert created.code == 201, created.body
    session = FuzzSession(await connect(app.ws_url, token))
    assert (await session.reply())["type"] == "hello"
    yield app, token, session
    session.ws.close()
    await asyncio.wait_for(session.reader, READ_TIMEOUT)


async def finish(app, token: str, session: FuzzSession) -> None:
    """After the fuzzing: the socket is open, a valid send works, the stored history is exact."""
    assert session.ws.close_code is None
    await session.ws.write_message(orjson.dumps({"type": "join", "room": "lobby"}).decode())
    assert (await session.reply())["type"] == "joined"
    await session.ws.write_message(
        orjson.dumps({"type": "send", "room": "lobby", "text": "still here", "client_id": "end"})
    )
    ack = await session.reply()
    assert ack["type"] == "ack" and ack["client_id"] == "end", ack
    session.stored.setdefault("lobby", []).append(Stored("lobby", ack["id"], "still here", "end"))
    for _ in range(200):
        if any(e["type"] == "message" and e["id"] == ack["id"] for e in session.events):
            break
        await asyncio.sleep(0.025)
    else:
        raise AssertionError("the final message was never delivered")
    session.check_events()
    for room, kept in session.stored.items():
        response = await app.api.request("GET", f"/api/rooms/{room}/messages", token=token)
        assert response.code == 200, response.body
        history = orjson.loads(response.body)["messages"]
        for message in history:
            text = message["text"]
            assert isinstance(text, str) and 1 <= len(text) <= MAX_TEXT, message
            assert "\x00" not in text and not has_surrogate(text), message
        assert [(m["id"], m["text"], m.get("client_id")) for m in history] == [
            (m.id, m.text, m.client_id) for m in kept
        ], f"stored history of {room} is not exactly the acknowledged messages"
    outcomes = sorted(session.outcomes.items())
    print(f"fuzzed {session.fuzzed} frames (+{session.frames_sent - session.fuzzed} pings)")
    print(f"  seed {FUZZ_SEED}; answers: {outcomes}")


async def test_arbitrary_json_values_are_refused_one_by_one(fuzz):
    app, token, session = fuzz
    values = collect(JSON_VALUES.filter(lambda v: not isinstance(v, dict)), 300)
    dicts = collect(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5), 300)
    cases = [Case.of_value(v, "json") for v in values + dicts]
    await session.run(cases)
    assert session.outcomes.get("error:bad_request", 0) >= len(values)
    await finish(app, token, session)


async def test_raw_text_and_binary_frames(fuzz):
    app, token, session = fuzz
    texts = collect(RAW_TEXT, 700)
    blobs = collect(st.binary(max_size=64), 60)
    blobs.append(b'{"type":"ping"}')
    cases = [Case.of_text(t, "raw") for t in texts]
    cases += [Case(b, UNPARSEABLE, "binary") for b in blobs]
    await session.run(cases)
    await finish(app, token, session)


async def test_frames_with_a_type_and_random_fields(fuzz):
    app, token, session = fuzz
    frames = collect(typed_frames(), 1500)
    cases = [Case.of_value(f, "typed", ascii_only=i % 2 == 0) for i, f in enumerate(frames)]
    await session.run(cases)
    # The generator must reach both sides of the oracle, or the property says little.
    assert session.outcomes.get("ack", 0) > 10 and session.outcomes.get("joined", 0) > 5
    assert sum(v for k, v in session.outcomes.items() if k.startswith("error")) > 300
    await finish(app, token, session)


async def test_valid_looking_frames_with_wrong_types(fuzz):
    app, token, session = fuzz
    frames = collect(wrong_typed_frames(), 700)
    cases = [Case.of_value(f, "wrong-typed", ascii_only=i % 2 == 1) for i, f in enumerate(frames)]
    await session.run(cases)
    await finish(app, token, session)
