"""A sweep driver killed outright leaves no process behind (Ray's agents outlived it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asdbench.scale import orphans

# A driver as `asdbench sweep` is one: it starts the watcher, then a daemon that detaches from it (as Ray's agents,
# reparented to init once their parent goes), and prints the daemon's pid.
DRIVER = """
import subprocess, sys, time
from asdbench.scale import orphans
orphans.watch()
daemon = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(daemon.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="the watcher reads /proc")
def test_the_descendants_of_a_killed_driver_are_ended_and_nothing_else():
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])  # not the driver's
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
    try:
        daemon = int(driver.stdout.readline())
        time.sleep(2 * orphans.POLL_S + 0.5)  # the watcher has seen the daemon
        assert daemon in orphans.descendants(driver.pid)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and orphans._stat(daemon) is not None:
            time.sleep(0.1)
        assert orphans._stat(daemon) is None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        driver.kill()
