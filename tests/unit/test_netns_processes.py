"""Finding processes by network namespace and killing the ones no record names."""
from __future__ import annotations

import os
import signal
import subprocess

from netd.node.cleanup import kill_unrecorded, netns_processes


def test_finds_a_child_in_our_namespace_and_kills_only_unrecorded() -> None:
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        mine = f"/proc/{os.getpid()}/ns/net"
        found = netns_processes([mine, "/nonexistent/netns"])
        assert list(found) == [mine]
        assert child.pid in found[mine] and os.getpid() not in found[mine]
        assert kill_unrecorded([child.pid], {child.pid}) == 0       # its own session
        assert child.poll() is None
        assert kill_unrecorded([child.pid], set()) == 1
        assert child.wait(timeout=5) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_gone_processes_are_skipped() -> None:
    child = subprocess.Popen(["true"])
    child.wait()
    assert kill_unrecorded([child.pid], set()) == 0
