"""The node's ordered file writer (netd.node.filewriter) and the per-pod file jobs that
run on it (adoption.write_state, containerlog.rotate)."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from netd.node.adoption import write_state
from netd.node.containerlog import log_file, rotate
from netd.node.filewriter import FileWriter


def blocked_writer() -> tuple[FileWriter, threading.Event, list[str]]:
    """A writer whose first job blocks until released, so later jobs queue up."""
    w = FileWriter(name="test-files")
    gate = threading.Event()
    done: list[str] = []
    w.submit("gate", lambda: (gate.wait(5), done.append("gate")))
    return w, gate, done


@pytest.mark.parametrize("submits,expected", [
    ([("a", "a1")], ["a1"]),
    ([("a", "a1"), ("a", "a2")], ["a2"]),
    ([("a", "a1"), ("b", "b1"), ("a", "a2")], ["a2", "b1"]),
    ([("a", "a1"), ("b", "b1"), ("c", "c1")], ["a1", "b1", "c1"]),
    ([("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")], ["a3", "b1"]),
], ids=["one", "latest-wins", "keeps-first-place", "fifo", "burst-coalesced"])
def test_order_and_coalescing(submits: list[tuple[str, str]], expected: list[str]) -> None:
    w, gate, done = blocked_writer()
    for key, label in submits:
        w.submit(key, lambda label=label: done.append(label))
    gate.set()
    assert w.flush(5)
    assert done == ["gate", *expected]
    assert w.pending() == 0


def test_failed_job_does_not_stop_the_writer() -> None:
    w = FileWriter(name="test-files")
    done: list[int] = []

    def boom() -> None:
        raise OSError("disk full")

    w.submit("x", boom)
    w.submit("y", lambda: done.append(1))
    assert w.flush(5)
    assert done == [1]


async def test_run_returns_result_and_exception() -> None:
    w = FileWriter(name="test-files")
    assert await w.run(lambda: 41 + 1) == 42

    def boom() -> int:
        raise FileNotFoundError("gone")

    with pytest.raises(FileNotFoundError):
        await w.run(boom)


async def test_run_is_ordered_after_queued_saves(tmp_path: Path) -> None:
    """The pod directory's removal runs after its queued state record, which would
    otherwise re-create the directory."""
    w, gate, _ = blocked_writer()
    path = tmp_path / "state" / "uid1.json"
    w.submit(("state", str(path)), lambda: write_state(str(path), b"{}"))
    fut = w.run(path.exists)
    gate.set()
    assert await fut is True


def test_flush_times_out_while_a_job_blocks() -> None:
    w, gate, _ = blocked_writer()
    assert w.flush(0.01) is False
    gate.set()
    assert w.flush(5) is True


@pytest.mark.parametrize("exists", [True, False], ids=["dir-exists", "dir-missing"])
def test_write_state_replaces_atomically(tmp_path: Path, exists: bool) -> None:
    d = tmp_path / "state"
    if exists:
        d.mkdir(parents=True)
    write_state(str(d / "uid1.json"), json.dumps({"uid": "uid1", "n": 1}).encode())
    write_state(str(d / "uid1.json"), json.dumps({"uid": "uid1", "n": 2}).encode())
    assert json.loads((d / "uid1.json").read_text()) == {"uid": "uid1", "n": 2}
    assert sorted(p.name for p in d.iterdir()) == ["uid1.json"]


@pytest.mark.parametrize("existing,restart,left", [
    ([], 0, []),
    (["0.log", "1.log", "2.log"], 3, ["2.log"]),
    (["0.log", "1.log", "notes.txt", "x.log"], 2, ["1.log", "notes.txt", "x.log"]),
], ids=["fresh", "keeps-previous", "ignores-foreign-files"])
def test_rotate(tmp_path: Path, existing: list[str], restart: int, left: list[str]) -> None:
    d = log_file(tmp_path, "web", 0).parent
    if existing:
        d.mkdir(parents=True)
        for name in existing:
            (d / name).write_text("x")
    path = rotate(tmp_path, "web", restart)
    assert path == log_file(tmp_path, "web", restart)
    assert sorted(p.name for p in d.iterdir()) == left
