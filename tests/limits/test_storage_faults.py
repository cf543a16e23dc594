"""Storage outages: never a 500, never a hang, one warning per outage, and recovery.

Real storages are stopped, restarted and paused with SIGSTOP (the port still accepts
connections, but nothing answers) while requests flow, on every adapter: the sync storage
path (pure WSGI, Flask) and the async one (pure ASGI, Starlette, FastAPI).
"""

from __future__ import annotations

import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Harness, MakeHarness, Reply
from tests.servers import HOST, Server, free_port, memcached_server, need_binary, redis_server

BOUND = 2.0  # seconds any request may take while the storage is down or silent
pytestmark = pytest.mark.redis


@pytest.fixture
def own_redis() -> Iterator[Server]:
    """A redis-server of this test's own, free to be killed and paused."""
    with redis_server() as server:
        server.start()
        try:
            yield server
        finally:
            server.resume()


def timed(client: Harness, path: str = "/") -> tuple[Reply, float]:
    started = time.monotonic()
    reply = client.get(path)
    return reply, time.monotonic() - started


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    records = [r for r in caplog.records if r.name == "restfault"]
    failed = sum("failed" in r.getMessage() for r in records)
    recovered = sum("answers again" in r.getMessage() for r in records)
    return failed, recovered


def test_killed_then_restarted_redis(
    rate_limited: MakeHarness, own_redis: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="restfault")
    client = rate_limited(
        default_limits="5/minute",
        storage_uri=f"redis://{HOST}:{own_redis.port}",
        storage_retry_interval=0.2,
    )
    assert [client.get("/").rate()[1] for _ in range(2)] == [4, 3]

    own_redis.stop()
    down = []
    for _ in range(8):
        reply, seconds = timed(client)
        assert seconds < BOUND
        down.append(reply.status)
    # The per-process fallback enforces the same limit (counting afresh).
    assert down == [200] * 5 + [429] * 3
    assert outage_lines(caplog) == (1, 0)

    own_redis.start()
    deadline = time.monotonic() + 5
    while True:
        time.sleep(0.25)  # the retry interval: the real storage is tried again after it
        reply, seconds = timed(client)
        assert seconds < BOUND
        assert reply.status in (200, 429)
        if reply.status == 200:
            break
        assert time.monotonic() < deadline, "never went back to the restarted redis"
    assert reply.rate()[1] == 4  # the restarted redis (no persistence) counts afresh
    assert outage_lines(caplog) == (1, 1)


@pytest.mark.parametrize(
    "storage", ["redis", pytest.param("memcached", marks=pytest.mark.memcached)]
)
def test_paused_storage_never_hangs_a_request(
    rate_limited: MakeHarness,
    storage: str,
    own_redis: Server,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="restfault")
    with memcached_server() if storage == "memcached" else own_redis as server:
        if storage == "memcached":
            server.start()
        client = rate_limited(
            default_limits="3/minute",
            storage_uri=f"{storage}://{HOST}:{server.port}",
            storage_retry_interval=0.5,
        )
        assert client.get("/").status == 200
        server.pause()
        try:
            times = []
            statuses = []
            for _ in range(6):
                reply, seconds = timed(client)
                times.append(seconds)
                statuses.append(reply.status)
                time.sleep(0.05)
            # Each probe of the silent storage costs storage_timeout (0.25 s), no more, and
            # is made at most once per retry interval: the other requests do not wait.
            assert max(times) < BOUND, times
            assert max(times) < 0.25 + 0.5, times
            assert sum(t > 0.2 for t in times) <= 2, times
            assert statuses == [200, 200, 200, 429, 429, 429]
            assert outage_lines(caplog) == (1, 0)
        finally:
            server.resume()
        deadline = time.monotonic() + 5
        while outage_lines(caplog)[1] == 0:
            assert time.monotonic() < deadline, "never went back to the resumed storage"
            time.sleep(0.1)
            assert timed(client)[1] < BOUND


def test_a_slow_failure_is_probed_once_per_interval(
    rate_limited: MakeHarness, own_redis: Server
) -> None:
    # A probe slower than the retry interval must not make the next request probe again.
    client = rate_limited(
        default_limits="5/minute",
        storage_uri=f"redis://{HOST}:{own_redis.port}",
        storage_timeout=0.5,
        storage_retry_interval=0.3,
    )
    assert client.get("/").status == 200
    own_redis.pause()
    first = timed(client)[1]
    following = [timed(client)[1] for _ in range(3)]
    assert 0.4 < first < BOUND
    assert max(following) < 0.2, following


def _client_key(request: object) -> str:
    return "one-client"


# Keyed by address, a request's plan is made at once; a key_func is asked on the way.
@pytest.mark.parametrize("keyed", [{}, {"key_func": _client_key}], ids=["address", "key_func"])
def test_policy_allow(rate_limited: MakeHarness, own_redis: Server, keyed: dict[str, Any]) -> None:
    # 2/minute: a key this process knows to be spent would be denied without the storage.
    client = rate_limited(
        default_limits="2/minute",
        storage_uri=f"redis://{HOST}:{own_redis.port}",
        on_storage_error="allow",
        **keyed,
    )
    assert client.get("/").status == 200
    own_redis.pause()
    for _ in range(3):
        reply, seconds = timed(client)
        assert seconds < BOUND
        assert reply.status == 200  # unlimited while the storage is out
        assert reply.header("x-ratelimit-limit") is None
        assert reply.header("retry-after") is None


def test_policy_deny(rate_limited: MakeHarness, own_redis: Server) -> None:
    client = rate_limited(
        default_limits="5/minute",
        storage_uri=f"redis://{HOST}:{own_redis.port}",
        on_storage_error="deny",
        style="bkend",
    )
    assert client.get("/").status == 200
    own_redis.stop()
    for _ in range(3):
        reply, seconds = timed(client)
        assert seconds < BOUND
        assert reply.status == 503
        assert reply.json() == {
            "error": "SERVICE_UNAVAILABLE",
            "message": "Rate-limit storage unavailable",
        }
        assert reply.header("retry-after") == "1"  # the retry interval, whole seconds


def test_policy_memory_is_the_default_and_logs_once(
    rate_limited: MakeHarness, own_redis: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="restfault")
    client = rate_limited(
        default_limits="2/minute",
        storage_uri=f"redis://{HOST}:{own_redis.port}",
        storage_retry_interval=0.05,
    )
    own_redis.stop()
    statuses = []
    for _ in range(5):
        statuses.append(client.get("/").status)
        time.sleep(0.06)  # past the retry interval: every request tries redis again
    assert statuses == [200, 200, 429, 429, 429]
    assert outage_lines(caplog) == (1, 0)  # one warning per outage, not per request


# -- topologies: sentinel and cluster on real redis-server processes ----------------------------


@pytest.fixture
def sentinel(own_redis: Server, tmp_path: Path) -> Iterator[Server]:
    binary = need_binary("redis-server")
    port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind {HOST}\n"
        f"sentinel monitor mymaster {HOST} {own_redis.port} 1\n"
        "sentinel down-after-milliseconds mymaster 60000\n"
    )
    with Server([binary, str(config), "--sentinel"], port, cwd=tmp_path) as server:
        server.start()
        try:
            yield server
        finally:
            server.resume()


# limits' async sentinel storage imports coredis.sentinel (deprecated in coredis 6) even
# when it is told to use redis-py; the warning is theirs, and only once per process.
COREDIS_SENTINEL = pytest.mark.filterwarnings(
    "ignore:The coredis.sentinel submodule:DeprecationWarning"
)


@COREDIS_SENTINEL
def test_redis_sentinel(rate_limited: MakeHarness, sentinel: Server) -> None:
    client = rate_limited(
        default_limits="2/minute",
        storage_uri=f"redis+sentinel://{HOST}:{sentinel.port}/mymaster",
    )
    assert [client.get("/").status for _ in range(3)] == [200, 200, 429]


@COREDIS_SENTINEL
def test_paused_sentinel_never_hangs_a_request(
    rate_limited: MakeHarness, sentinel: Server, caplog: pytest.LogCaptureFixture
) -> None:
    client = rate_limited(
        default_limits="2/minute",
        storage_uri=f"redis+sentinel://{HOST}:{sentinel.port}/mymaster",
    )
    sentinel.pause()  # before the first request: finding the master must not hang
    reply, seconds = timed(client)
    assert seconds < BOUND
    assert reply.status == 200
    assert outage_lines(caplog)[0] == 1


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is a valid port too."""
    while (port := free_port()) > 55000:
        pass
    return port


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    """Three redis-server nodes with cluster-enabled, slots spread by redis-cli (~1.5 s)."""
    binary = need_binary("redis-server")
    cli = need_binary("redis-cli")
    workdir = tmp_path_factory.mktemp("cluster")
    nodes: list[Server] = []
    try:
        for _ in range(3):
            port = cluster_port()
            argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            nodes.append(Server(argv, port, cwd=workdir))
            nodes[-1].start()
        addresses = [f"{HOST}:{node.port}" for node in nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        deadline = time.monotonic() + 15
        while True:
            info = subprocess.run(
                [cli, "-p", str(nodes[0].port), "cluster", "info"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout
            if "cluster_state:ok" in info:
                break
            assert time.monotonic() < deadline, info
            time.sleep(0.1)
        yield nodes
    finally:
        for node in nodes:
            node.__exit__()


@pytest.mark.parametrize("strategy", ["fixed-window", "moving-window", "sliding-window-counter"])
def test_redis_cluster(rate_limited: MakeHarness, strategy: str, cluster: list[Server]) -> None:
    client = rate_limited(
        default_limits="2/minute",
        strategy=strategy,
        storage_uri=f"redis+cluster://{HOST}:{cluster[0].port},{HOST}:{cluster[1].port}",
        storage_timeout=2.0,
        key_prefix=f"c{uuid.uuid4().hex[:12]}",
    )
    replies = [client.get("/") for _ in range(3)]
    assert [r.status for r in replies] == [200, 200, 429]
    assert [r.rate()[1] for r in replies] == [1, 0, 0]


def test_paused_redis_cluster_never_hangs_a_request(
    rate_limited: MakeHarness, cluster: list[Server]
) -> None:
    client = rate_limited(
        default_limits="2/minute",
        storage_uri=f"redis+cluster://{HOST}:{cluster[0].port}",
        key_prefix=f"c{uuid.uuid4().hex[:12]}",
    )
    assert client.get("/").status == 200
    for node in cluster:
        node.pause()
    try:
        # The sync client re-reads the slots from every node on a timeout: one probe costs
        # (nodes + 1) * storage_timeout, still bounded; the requests after it do not wait.
        times = [timed(client)[1] for _ in range(3)]
        assert max(times) < BOUND, times
        assert max(times[1:]) < 0.2, times
    finally:
        for node in cluster:
            node.resume()
