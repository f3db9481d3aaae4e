"""PasswordPool: argon2id on threads of its own, whose memory goes back to the system."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

import pytest

from chatroom.controllers import AuthController
from chatroom.controllers.errors import UnauthorizedError
from chatroom.controllers.passwords import PASSWORD_HASHER, PasswordPool
from tests.controllers.conftest import FAST_HASHER, ChatEnv
from tests.helpers import PASSWORD


@pytest.fixture
async def pool():
    pool = PasswordPool(2, FAST_HASHER)
    yield pool
    pool.shutdown()


def hash_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("chatroom-hash")]


async def test_hash_and_verify_round_trip_with_the_production_parameters() -> None:
    pool = PasswordPool(1)
    try:
        stored = await pool.hash(PASSWORD)
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert await pool.verify(stored, PASSWORD)
        assert not pool.needs_rehash(stored)
        assert pool.needs_rehash(FAST_HASHER.hash(PASSWORD))
    finally:
        pool.shutdown()


@pytest.mark.parametrize(
    "attempt",
    ["", "wrong password", PASSWORD.upper(), PASSWORD + " ", PASSWORD[:-1], "😀" * 256],
)
async def test_a_wrong_password_does_not_verify(pool: PasswordPool, attempt: str) -> None:
    stored = await pool.hash(PASSWORD)
    assert await pool.verify(stored, attempt) is False


@pytest.mark.parametrize(
    "stored",
    ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$", "$argon2id$" + "A" * 5000, "$2b$12$abc"],
)
async def test_a_malformed_stored_hash_does_not_verify(pool: PasswordPool, stored: str) -> None:
    assert await pool.verify(stored, PASSWORD) is False


async def test_each_hash_has_its_own_salt(pool: PasswordPool) -> None:
    first, second = await asyncio.gather(pool.hash(PASSWORD), pool.hash(PASSWORD))
    assert first != second
    assert await pool.verify(first, PASSWORD) and await pool.verify(second, PASSWORD)


async def test_hashes_run_on_at_most_the_pools_threads(pool: PasswordPool) -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def counting(password: str) -> str:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return FAST_HASHER.hash(password)
        finally:
            with lock:
                running -= 1

    pool.hasher = type("Counting", (), {"hash": staticmethod(counting)})()
    hashes = await asyncio.gather(*(pool.hash(f"password {i}") for i in range(40)))
    assert len(set(hashes)) == 40
    assert 1 <= most <= 2


async def test_fifty_logins_at_once_all_succeed(env: ChatEnv) -> None:
    pool = PasswordPool(2, FAST_HASHER)
    try:
        auth = AuthController(env.run, pool)
        names = [f"user{i}" for i in range(50)]
        await asyncio.gather(*(auth.register(name, PASSWORD) for name in names))
        results = await asyncio.gather(*(auth.login(name, PASSWORD) for name in names))
        assert [account.name for account, _ in results] == names
        assert len({token for _, token in results}) == 50
        # Wrong passwords in the same burst fail, and only they.
        mixed = await asyncio.gather(
            *(
                auth.login(name, PASSWORD if i % 2 else "wrong password")
                for i, name in enumerate(names)
            ),
            return_exceptions=True,
        )
        assert all(isinstance(r, UnauthorizedError) for r in mixed[::2])
        assert all(isinstance(r, tuple) for r in mixed[1::2])
    finally:
        pool.shutdown()


async def test_unknown_user_is_verified_against_the_pool_too(env: ChatEnv) -> None:
    pool = PasswordPool(1, FAST_HASHER)
    try:
        auth = AuthController(env.run, pool)
        verified = []
        real_verify = pool.verify

        async def recording(stored: str, password: str) -> bool:
            verified.append(stored)
            return await real_verify(stored, password)

        pool.verify = recording  # type: ignore[method-assign]
        with pytest.raises(UnauthorizedError):
            await auth.login("nobody", PASSWORD)
        assert len(verified) == 1 and verified[0].startswith("$argon2id$")
    finally:
        pool.shutdown()


async def test_shutdown_stops_the_threads_and_refuses_new_work() -> None:
    before = set(hash_threads())
    pool = PasswordPool(2, FAST_HASHER)
    await asyncio.gather(*(pool.hash(PASSWORD) for _ in range(4)))
    ours = set(hash_threads()) - before
    assert 1 <= len(ours) <= 2
    pool.shutdown()
    assert not any(thread.is_alive() for thread in ours)
    with pytest.raises(RuntimeError):
        await pool.hash(PASSWORD)
    pool.shutdown()  # twice is harmless


async def test_shutdown_drops_queued_hashes() -> None:
    pool = PasswordPool(1, PASSWORD_HASHER)
    queued = [asyncio.ensure_future(pool.hash(f"password {i}")) for i in range(20)]
    await asyncio.sleep(0)  # every one submitted
    await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
    results = await asyncio.gather(*queued, return_exceptions=True)
    done = [r for r in results if isinstance(r, str)]
    cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
    assert len(done) + len(cancelled) == 20
    assert cancelled, "queued hashes should not all have run"


async def test_the_server_hashes_on_its_pool_and_stops_it(app_factory) -> None:
    running = await app_factory(hash_threads=3)
    passwords = running.server.controllers.passwords
    assert passwords.threads == 3
    names = [f"user{i}" for i in range(50)]
    responses = await asyncio.gather(*(running.api.register(name) for name in names))
    assert [r.code for r in responses] == [201] * 50
    tokens = await asyncio.gather(*(running.api.login(name) for name in names))
    assert len(set(tokens)) == 50
    threads = [t for t in hash_threads() if t.is_alive()]
    assert threads
    await running.server.stop()
    assert not any(t.is_alive() for t in threads)


MEMORY_PROBE = textwrap.dedent(
    """
    import asyncio
    from chatroom.controllers.passwords import PasswordPool

    def rss_kib():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

    async def main():
        pool = PasswordPool(2)
        await pool.hash("warm up the threads")
        before = rss_kib()
        stored = await asyncio.gather(*(pool.hash(f"password {i}") for i in range(12)))
        assert all(await asyncio.gather(*(pool.verify(s, f"password {i}")
                                          for i, s in enumerate(stored))))
        print(rss_kib() - before)
        pool.shutdown()

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; glibc's mallopt")
def test_hash_memory_goes_back_to_the_system_after_a_burst() -> None:
    """24 hashes of 19 MiB on 2 threads: what stays resident afterwards is far below one hash.

    Under glibc's default each hashing thread's arena kept its 19 MiB (and 0.1.0
    hashed on up to 4 threads of 8): this is a figure of memory, not of time.
    """
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    grown_kib = int(probe.stdout.strip())
    assert grown_kib < 8 * 1024, f"RSS grew {grown_kib} KiB after the burst"
