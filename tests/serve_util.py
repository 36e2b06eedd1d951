"""A real ``xsearch serve`` process on a free local port, for the server and browser tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

SRC = Path(__file__).resolve().parents[1] / "src"


def child_env() -> dict:
    """The environment a child xsearch process runs in: this checkout's sources, one thread."""
    return {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get(
        "PYTHONPATH", ""), "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "passive"}


def run_xsearch(*args: str) -> subprocess.CompletedProcess:
    """``xsearch ARGS`` as its own process, as a user beside the server would run it."""
    return subprocess.run([sys.executable, "-m", "xsearch", *args], env=child_env(),
                          capture_output=True, text=True, timeout=300)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(index: Path, *args: str, env: dict | None = None,
                   host: str = "127.0.0.1", wait_s: float = 180,
                   **popen) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start the server, wait until /api/health answers, yield (base url, the process);
    ``popen``: more arguments for Popen."""
    port = free_port()
    full_env = {**child_env(), **(env or {})}
    cmd = [sys.executable, "-m", "xsearch", "serve", "--index", str(index), "--host", host,
           "--port", str(port), *args]
    proc = subprocess.Popen(cmd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + wait_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read()}")
            try:
                if httpx.get(base + "/api/health", timeout=5).status_code in (200, 503):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
