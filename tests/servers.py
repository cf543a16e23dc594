"""Real servers for tests: redis-server, memcached, uvicorn and gunicorn on loopback.

Every server listens on a free 127.0.0.1 port, is started by the test that needs it, and
is stopped (its whole process group) when the test or module is done. Nothing here
touches a network beyond loopback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
REQUIRE_SERVICES = os.environ.get("RESTFAULT_REQUIRE_SERVICES") == "1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout} s")


def need_binary(name: str) -> str:
    """The path of ``name``; skip (or fail under CI, which installs it) when missing."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (make test installs it with apt-get)"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return path


class Server:
    """A child process in its own process group, listening on ``port``."""

    def __init__(
        self, argv: list[str], port: int, env: Mapping[str, str] | None = None, cwd: Path = ROOT
    ) -> None:
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__

    def start(self, timeout: float = 15.0) -> Server:
        self.process = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_port(self.port, timeout, self.process)
        except Exception:
            self.stop()
            raise
        return self

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections, but nothing answers.

        Returns once the process is really stopped, so that no request of the caller's
        races the signal and is still answered.
        """
        self.signal(signal.SIGSTOP)
        if self.process is None:
            return
        stat = Path(f"/proc/{self.process.pid}/stat")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                # the state is the field after the parenthesised command name
                if stat.read_text().rsplit(")", 1)[1].split()[0] in ("T", "t"):
                    return
            time.sleep(0.005)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self, timeout: float = 15.0) -> None:
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.close()


def redis_server(port: int | None = None) -> Server:
    """A private redis-server (no persistence) on a free loopback port, not yet started."""
    binary = need_binary("redis-server")
    port = port or free_port()
    argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    return Server(argv, port)


def memcached_server(port: int | None = None) -> Server:
    binary = need_binary("memcached")
    port = port or free_port()
    argv = [binary, "-l", HOST, "-p", str(port), "-U", "0", "-m", "32"]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    return Server(argv, port)


def uvicorn_server(app: str, env: Mapping[str, str] | None = None, workers: int = 1) -> Server:
    """``uvicorn app`` (an import string) on a free loopback port."""
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers), "--log-level", "warning"]
    return Server(argv, port, env)


def gunicorn_server(
    app: str, env: Mapping[str, str] | None = None, workers: int = 1, worker_class: str = "sync"
) -> Server:
    """``gunicorn app`` (an import string) on a free loopback port."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
    ]
    argv += ["--worker-class", worker_class, "--log-level", "warning", "--graceful-timeout", "2"]
    return Server(argv, port, env)


@contextlib.contextmanager
def running(server: Server, timeout: float = 15.0) -> Iterator[Server]:
    with server:
        server.start(timeout)
        yield server
