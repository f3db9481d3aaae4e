"""CI smoke mode: a short steady run against chatroom (or a baseline: ``server=``) that fails
on any loss, duplicate or disorder — never on timing.

From Python (e.g. a pytest test)::

    from benchmarks.smoke import run_smoke
    result = run_smoke(seconds=10)
    assert result["ok"], result

From a shell (exit status 1 on any lost/duplicated/out-of-order message)::

    python -m benchmarks.smoke --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generator import ClientSpec, LoadGenerator, raise_nofile_limit
from benchmarks.servers import make_accounts, room_name, start_baseline, start_chatroom

SERVERS = ("chatroom", "baseline", "socketio")


async def _smoke(
    seconds: float,
    clients: int,
    rooms: int,
    senders: int,
    rate: float,
    processes: int,
    server_kind: str = "chatroom",
) -> dict:
    raise_nofile_limit()
    with tempfile.TemporaryDirectory(prefix="crs-") as tmp:
        if server_kind == "chatroom":
            server = await start_chatroom(Path(tmp) / "data", processes)
        else:
            server = await start_baseline(Path(tmp), None, server_kind)
        gen = None
        try:
            accounts = await make_accounts(server.port, clients, rooms)
            specs = [
                ClientSpec(
                    i,
                    accounts["users"][i],
                    accounts["tokens"][i],
                    room_name(i % rooms),
                    i < senders,
                )
                for i in range(clients)
            ]
            gen = LoadGenerator(server.port, specs, protocol=server.protocol)
            await gen.start()
            connected = await gen.connect(concurrency=20)
            joined = await gen.join(concurrency=20)
            stats = await gen.send_phase(rate, seconds, 64, drain_timeout=15.0)
        finally:
            if gen is not None:
                await gen.stop()
            stopped = server.stop()
    setup_failures = {**connected["failures"], **joined["failures"]}
    result = {
        "sent": stats["sent"],
        "acked": stats["acked"],
        "delivered": stats["delivered"],
        "expected_deliveries": stats["sent"] * clients // rooms,
        "lost": stats["lost"],
        "duplicated": stats["duplicates"],
        "out_of_order": stats["out_of_order"],
        "unacked": stats["unacked"],
        "closed": stats["closed"],
        "errors": stats["errors"],
        "setup_failures": setup_failures,
        "p99_ms": stats["latency"]["p99_ms"],
        "server_exit_code": stopped["exit_code"],
    }
    result["ok"] = not (
        result["lost"]
        or result["duplicated"]
        or result["out_of_order"]
        or result["unacked"]
        or result["closed"]
        or result["errors"]
        or setup_failures
        or connected["hist"].n != clients
        or joined["hist"].n != clients
        or result["sent"] == 0
        or result["delivered"] != result["expected_deliveries"]
    )
    return result


def run_smoke(
    seconds: float = 10.0,
    clients: int = 40,
    rooms: int = 4,
    senders: int = 8,
    rate: float = 10.0,
    processes: int = 1,
    server: str = "chatroom",
) -> dict:
    """Start ``server`` (chatroom on a temporary data dir, or the ``baseline`` or
    ``socketio`` baseline), run a steady load, stop it; the counts.

    Returns ``lost``, ``duplicated``, ``out_of_order`` (the correctness counts), plus
    ``sent``, ``acked``, ``delivered``, ``expected_deliveries``, ``unacked``, ``errors``,
    ``setup_failures``, ``p99_ms`` (informative only) and ``ok``: True when nothing
    was lost, duplicated, disordered, unacknowledged or refused. Timing never fails it.
    Takes about ``seconds`` + 10 s (accounts, connect, drain, shutdown).
    """
    if clients % rooms or senders > clients:
        raise ValueError("clients must be a multiple of rooms, senders at most clients")
    if server not in SERVERS:
        raise ValueError(f"server must be one of {SERVERS}")
    return asyncio.run(_smoke(seconds, clients, rooms, senders, rate, processes, server))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.smoke", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--rate", type=float, default=10.0, help="msg/s per sender")
    parser.add_argument("--processes", type=int, default=1, help="chatroom --processes")
    parser.add_argument("--server", choices=SERVERS, default="chatroom")
    args = parser.parse_args(argv)
    started = time.monotonic()
    result = run_smoke(
        args.seconds,
        args.clients,
        args.rooms,
        args.senders,
        args.rate,
        args.processes,
        args.server,
    )
    print(json.dumps(result, indent=2))
    verdict = "OK" if result["ok"] else "FAILED"
    print(f"smoke {verdict} in {time.monotonic() - started:.1f}s")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
