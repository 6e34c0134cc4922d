"""Processes the benchmark starts and stops: a Reelwire deployment and the peers."""

from __future__ import annotations

import asyncio
import ctypes
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from reelwire.config import REPO_ROOT


def free_port() -> int:
    """Return a free port between 20000 and 32767.

    The range is below Linux's ephemeral ports and above Ray's worker ports
    (10002 to 19999 by default), so the Ray instance that starts after the
    port was chosen cannot take it first.
    """
    for _ in range(200):
        port = random.randint(20000, 32767)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32767")


@dataclass
class ManagedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def rss_mb(self) -> float:
        """Resident memory of the process and its children, in MiB."""
        return process_tree_rss_mb(self.process.pid)

    def stop(self, timeout_s: float = 60) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


PR_SET_PDEATHSIG = 1


def _stop_with_parent() -> None:
    """Ask Linux to send SIGINT to this child when the benchmark process dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGINT)
    except (OSError, AttributeError):
        pass


def start_process(
    name: str, command: list[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO_ROOT
) -> ManagedProcess:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
            preexec_fn=_stop_with_parent if sys.platform == "linux" else None,
        )
    return ManagedProcess(name, process, log_path)


async def start_ready(
    name: str, command: list[str], env: dict[str, str], log_dir: Path, ready_url: str, timeout_s: float,
    cwd: Path = REPO_ROOT,
) -> ManagedProcess:
    """Start a process and wait until ``ready_url`` returns 200; stop the process when it never does."""
    process = start_process(name, command, env, log_dir, cwd)
    try:
        await wait_http(process, ready_url, timeout_s)
    except BaseException:
        process.stop()
        raise
    return process


async def wait_http(managed: ManagedProcess, url: str, timeout_s: float) -> None:
    """Wait until ``url`` returns 200; raise RuntimeError naming the log when it does not."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if managed.process.poll() is not None:
                raise RuntimeError(f"{managed.name} exited with {managed.process.returncode}; see {managed.log_path}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"{managed.name} did not return 200 for {url} within {timeout_s:.0f} s; see {managed.log_path}")


async def run_peer_script(script: Path, name: str, run_dir: Path, timeout_s: float) -> Path:
    """Run ``script install``, logging to run_dir, then return what ``script path`` prints.

    The install script returns at once when its peer is already installed. On
    timeout the script's whole process group is killed, because the package
    managers and compilers it starts run in that group too.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / f"{name}-install.log"
    with open(log_path, "wb") as log:
        install = await asyncio.create_subprocess_exec(
            "bash", str(script), "install", stdout=log, stderr=asyncio.subprocess.STDOUT, cwd=REPO_ROOT,
            start_new_session=True,
        )
        try:
            await asyncio.wait_for(install.wait(), timeout_s)
        except TimeoutError:
            os.killpg(install.pid, signal.SIGKILL)
            await install.wait()
            raise RuntimeError(f"installing {name} timed out after {timeout_s:.0f} s; see {log_path}") from None
    if install.returncode != 0:
        raise RuntimeError(f"installing {name} failed with exit code {install.returncode}; see {log_path}")
    path = await asyncio.create_subprocess_exec("bash", str(script), "path", stdout=asyncio.subprocess.PIPE,
                                                cwd=REPO_ROOT)
    output, _ = await path.communicate()
    if path.returncode != 0:
        raise RuntimeError(f"'{script.name} path' failed with exit code {path.returncode}")
    return Path(output.decode().strip())


def process_tree_rss_mb(pid: int) -> float:
    return sum(_own_rss_mb(member) for member in [pid, *_descendants(pid)])


def own_rss_mb(pid: int) -> float:
    """Resident memory of one process (not its children), in MiB."""
    return _own_rss_mb(pid)


def _own_rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def python() -> str:
    return sys.executable
