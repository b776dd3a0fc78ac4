"""A throwaway Ray cluster for the tests, stopped by what started it and by nothing else.

``LocalCluster`` runs ``ray start --head --block``: a cluster started the way a user starts one, with the start
command kept in the foreground, where it owns the cluster's processes and stops them, and only them, on SIGTERM.
(``ray stop`` stops every Ray process of the machine: a user's own cluster, and another test worker's.) The command
gets SIGTERM when the process that started it dies (the kernel's parent-death signal), so a test worker that crashes
leaves no cluster behind either.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).parent
_PR_SET_PDEATHSIG = 1


class LocalCluster:
    """``with LocalCluster(folder) as cluster:`` a head node with ``cpus`` CPUs; ``cluster.address`` to join it."""

    def __init__(self, temp: Path, cpus: int = 2):
        self.temp, self.cpus = Path(temp), cpus
        self.address: str | None = None
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def env() -> dict[str, str]:
        """The cluster's environment, and its drivers': no token authentication (a token left in ~/.ray by another
        Ray would otherwise be used by some processes and not others), no usage reports, no drain before stopping,
        and the toy stages of tests/build_stages.py importable, as a cluster's workers import a plugin's stages."""
        return {
            **os.environ,
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        }

    def start(self, timeout: float = 180) -> LocalCluster:
        self.temp.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log = self.temp / "ray-start.log"
        command = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            f"--num-cpus={self.cpus}",
            "--include-dashboard=false",
            f"--temp-dir={self.temp}",
            "--disable-usage-stats",
        ]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=self.env(), preexec_fn=_die_with_parent
            )
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"`ray start` did not start a cluster:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        self.address = f"127.0.0.1:{port}"
        return self

    def descendants(self) -> list[int]:
        """The cluster's processes: everything started under its ``ray start`` (GCS, raylet, workers, actors)."""
        if self.process is None:
            return []
        children: dict[int, list[int]] = {}
        for pid, parent in _parents().items():
            children.setdefault(parent, []).append(pid)
        found, todo = [], [self.process.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                found.append(child)
                todo.append(child)
        return found

    def processes(self, marker: str) -> list[int]:
        """The cluster's processes whose command line holds ``marker`` (Ray names an actor's process after its
        class): never another cluster's."""
        return [pid for pid in self.descendants() if marker in _cmdline(pid)]

    def stop(self, timeout: float = 60) -> None:
        """SIGTERM to ``ray start``, which stops the processes it started; whatever of them outlives it is killed."""
        if self.process is None:
            return
        started = [self.process.pid, *self.descendants()]
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in started[1:]:
            if alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.process = None


def _die_with_parent() -> None:  # in the child, before exec
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:  # "pid (comm) state ppid ...": the name may hold spaces and parentheses
                found[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
