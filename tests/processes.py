"""Real processes killed from outside at chosen moments (the SIGKILL tests of the long jobs)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence


def run_and_kill_when(
    argv: Sequence[str], env: dict[str, str], progress: Callable[[], int], threshold: int, timeout: float = 120.0
) -> bool:
    """Start ``argv`` and SIGKILL it once ``progress()`` reaches ``threshold`` (``0``: shortly after the start).

    Returns:
        Whether the kill interrupted the process (``False``: it had already finished).
    """
    proc = subprocess.Popen(list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and progress() < threshold and time.monotonic() < deadline:
        time.sleep(0.01)
    if threshold == 0:
        time.sleep(0.3)  # still importing or planning
    killed = proc.poll() is None
    if killed:
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    return killed
