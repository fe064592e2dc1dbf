"""Run the probe as a child process and measure it: exit code, output, wall time, peak RSS.

``os.wait4`` returns the resource usage of exactly that child (its ``ru_maxrss``
is the child's peak resident set, in KiB on Linux), where
``getrusage(RUSAGE_CHILDREN)`` reports the largest of all children waited for.
The wait is bounded: a child past its limit is killed and the test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

_POLL = 0.01


@dataclass(frozen=True)
class Measured:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mib: float


def run_probe(*args: str, limit: float = 60.0) -> Measured:
    """``python -m mqtt_tls_probe ARGS...``, killed (and failed) after ``limit`` seconds."""
    command = [sys.executable, "-m", "mqtt_tls_probe", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err)
        deadline = started + limit
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                process.returncode = -9
                raise AssertionError(f"the probe ran longer than {limit} s: {command}")
            time.sleep(_POLL)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode=process.returncode,
            stdout=out.read().decode(),
            stderr=err.read().decode(),
            seconds=seconds,
            max_rss_mib=usage.ru_maxrss / 1024,
        )
