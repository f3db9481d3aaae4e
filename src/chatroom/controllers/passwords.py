"""Password hashing off the event loop, in a small pool whose memory goes back to the OS.

argon2id (OWASP's profile) needs 19 MiB for each hash. Run on many threads
under glibc's default allocator, each thread's arena kept its 19 MiB after the
hash, for the life of the process: 200 logins left a server at ~180 MB.
Here hashes run on a fixed, small number of threads (``hash_threads``), and
glibc is told to serve every allocation of 1 MiB or more with its own
``mmap``, so a hash's 19 MiB is unmapped the moment it is freed: memory at
rest is what it was before the logins, and a burst holds at most
``threads x 19 MiB`` while it runs. docs/performance.md has the measurements
(a process pool and arena limits were measured too, and kept more).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

import argon2

log = logging.getLogger(__name__)

#: OWASP's argon2id profile: 19 MiB, 2 passes, 1 lane (~20 ms a hash).
PASSWORD_HASHER = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

#: Hashing threads per process by default (the ``hash_threads`` setting).
DEFAULT_HASH_THREADS = 2

#: glibc's mallopt parameter, and the size from which an allocation gets its own mmap.
_M_MMAP_THRESHOLD = -3
LARGE_ALLOCATION_BYTES = 1 << 20


@functools.cache
def return_large_allocations() -> bool:
    """Make glibc ``mmap`` (and on free ``munmap``) every allocation of 1 MiB or more.

    glibc does so from 128 KiB by default, but raises that threshold to the size
    of any mmapped block once it is freed (up to 32 MiB), after which argon2's
    19 MiB come from a thread's arena and stay there. A fixed threshold turns
    that off. It is process-wide and costs ~4 ms of page faults per hash; it
    is set once. False where the C library is not glibc (nothing to do there).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, LARGE_ALLOCATION_BYTES) == 1
    if not ok:
        log.warning("could not set glibc's mmap threshold; password hashes may keep memory")
    return ok


class PasswordPool:
    """Hashes and verifies passwords on ``threads`` threads of its own.

    ``await pool.hash(password)``, ``await pool.verify(stored, password)``;
    more requests than threads wait their turn, so a login storm takes at most
    ``threads`` cores and ``threads x 19 MiB``, never the database's threads.
    The composition root builds one per process and shuts it down on stop.
    """

    def __init__(
        self,
        threads: int = DEFAULT_HASH_THREADS,
        hasher: argon2.PasswordHasher = PASSWORD_HASHER,
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        return_large_allocations()
        self.hasher = hasher
        self.threads = threads
        # Threads start on first use; a pool that never hashes costs nothing.
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="chatroom-hash")

    async def _call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def hash(self, password: str) -> str:
        """The argon2id hash of ``password`` (with a random salt)."""
        return await self._call(self.hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches ``stored``; False for a wrong or malformed hash too."""
        try:
            return await self._call(self.hasher.verify, stored, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than this pool's (no hashing)."""
        return self.hasher.check_needs_rehash(stored)

    def shutdown(self) -> None:
        """Finish the hash running on each thread, drop the queued ones, stop the threads."""
        self._executor.shutdown(wait=True, cancel_futures=True)
