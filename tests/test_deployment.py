"""docs/deployment.md's nginx block and systemd unit, exercised for real."""

from __future__ import annotations

import asyncio
import configparser
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from chatroom.cli import main
from tests.helpers import PASSWORD, Api, ChatClient, connect
from tests.processes import free_port

DEPLOYMENT = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"
pytestmark = pytest.mark.timeout(90)


def fenced(language: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DEPLOYMENT.read_text(), re.S)
    assert len(blocks) == 1, f"expected one {language} block in deployment.md"
    return blocks[0]


def documented_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string(fenced("ini"))
    return unit


def documented_serve_option(option: str) -> str:
    """The value the documented unit's ExecStart gives ``option`` ("" when it gives none)."""
    command = documented_unit()["Service"]["ExecStart"].split()
    return command[command.index(option) + 1] if option in command else ""


async def wait_until_proxied(api: Api) -> None:
    for _ in range(50):
        try:
            if (await api.request("GET", "/healthz")).code == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)


async def post_from(address: str, url: str, body: dict, headers: dict | None = None) -> int:
    """POST ``body`` as JSON from the local ``address`` (any of 127.0.0.0/8 on Linux)."""
    request = HTTPRequest(
        url,
        method="POST",
        body=orjson.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
        network_interface=address,
        request_timeout=15,
    )
    return (await AsyncHTTPClient().fetch(request, raise_error=False)).code


@pytest.fixture
def nginx(tmp_path):
    """Start nginx with the documented block in front of the given upstream ports."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        pytest.fail("nginx is not installed: scripts/test installs it with apt-get as root")
    started: list[subprocess.Popen] = []

    def start(upstream_ports: list[int]) -> int:
        block = fenced("nginx")
        servers = "".join(f"    server 127.0.0.1:{port};\n" for port in upstream_ports)
        block = re.sub(r"(    server 127\.0\.0\.1:\d+;\n)+", servers, block)
        port = free_port()
        block = block.replace("listen 8080;", f"listen 127.0.0.1:{port};")
        prefix = tmp_path / "nginx"
        (prefix / "logs").mkdir(parents=True)
        conf = prefix / "nginx.conf"
        conf.write_text(
            "daemon off;\nworker_processes 1;\npid nginx.pid;\nerror_log logs/error.log;\n"
            "events { worker_connections 256; }\n"
            "http {\n access_log off;\n client_body_temp_path tmp;\n proxy_temp_path tmp;\n"
            f"{block}\n}}\n"
        )
        (prefix / "tmp").mkdir()
        check = subprocess.run(
            [binary, "-t", "-p", str(prefix), "-c", str(conf)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        started.append(subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf)]))
        return port

    yield start
    for process in started:
        process.terminate()
        process.wait(10)


async def test_two_servers_behind_the_documented_nginx(start_hosts, nginx):
    hosts = await start_hosts(2)
    port = nginx([host.port for host in hosts])
    api = Api(f"http://127.0.0.1:{port}")
    await wait_until_proxied(api)
    token = await api.user("alice")
    # Round robin without sticky sessions: four sockets land on both servers,
    # with the Origin a browser on the proxy's address would send.
    origin = {"Origin": f"http://127.0.0.1:{port}"}
    clients = []
    for _ in range(4):
        ws = await connect(f"ws://127.0.0.1:{port}/ws", token, headers=origin)
        client = ChatClient(ws, "alice")
        await client.next("hello")
        await client.join("lobby")
        clients.append(client)
    await clients[0].send("through nginx", client_id="n1")
    for client in clients:
        assert (await client.next("message"))["text"] == "through nginx"
    for client in clients:
        client.close()


async def test_behind_the_documented_nginx_each_client_has_its_own_login_throttle(
    start_hosts, nginx
):
    # The servers run with the documented unit's --trusted-proxies, and a login
    # budget of 5 per address so that the guesser uses it up quickly.
    proxies = documented_serve_option("--trusted-proxies")
    env = {
        "CHATROOM_TRUSTED_PROXIES": proxies,
        "CHATROOM_AUTH_BURST": "5",
        "CHATROOM_AUTH_PER_MINUTE": "1",
    }
    hosts = await start_hosts(2, env=env)
    port = nginx([host.port for host in hosts])
    await wait_until_proxied(Api(f"http://127.0.0.1:{port}"))
    base = f"http://127.0.0.1:{port}/api"
    owner, guesser = "127.0.0.3", "127.0.0.2"  # two clients, each its own loopback address
    carol = {"username": "carol", "password": PASSWORD}
    assert await post_from(owner, f"{base}/register", carol) == 201
    # The guesser fails at logins (other names each time, so no account limit is
    # involved) and claims to be the owner: nginx appends its real address.
    answers = []
    for _ in range(8):
        wrong = {"username": f"u{secrets.token_hex(4)}", "password": "wrong password"}
        forged = {"X-Forwarded-For": owner}
        answers.append(await post_from(guesser, f"{base}/login", wrong, forged))
    assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}, answers
    # The owner, on her own address, is not locked out by the guesser.
    assert await post_from(owner, f"{base}/login", carol) == 200, proxies
    assert await post_from(guesser, f"{base}/login", carol) == 429


def test_the_documented_systemd_unit_matches_the_cli(tmp_path):
    unit = documented_unit()
    command = unit["Service"]["ExecStart"].split()
    assert command[0].endswith("/chatroom") and command[1] == "serve"
    options = {opt for p in main.commands["serve"].params for opt in p.opts}
    assert {arg for arg in command[2:] if arg.startswith("--")} <= options
    assert unit["Service"]["KillSignal"] == "SIGTERM"
    assert unit["Service"]["KillMode"] == "mixed"
    # Behind nginx on the same host: its address is the one trusted proxy.
    assert documented_serve_option("--trusted-proxies") == "127.0.0.1,::1"
    # The data directory (password hashes, every message) is the service's only.
    assert unit["Service"]["StateDirectoryMode"] == "0700"
    assert unit["Service"]["UMask"] == "0077"
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: scripts/test installs it as root")
    path = tmp_path / "chatroom.service"
    text = fenced("ini").replace(command[0], shutil.which("chatroom") or "/bin/true")
    path.write_text(text)
    result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    problems = [
        line
        for line in result.stderr.splitlines()
        if "chatroom.service" in line and "User" not in line and "Group" not in line
    ]
    assert not problems, result.stderr
