"""Probe settings, result counting, the checks over loopback, and the worker loop on a
fake clock."""
from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from netd.client.clock import FakeClock
from netd.node.builtin import BuiltinPlan, BuiltinServers, PodView
from netd.node.probes import LIVENESS, READINESS, STARTUP, ProbeSpec, ProbeWorker, \
    ResultTracker, container_probes, http_probe, probe_spec, run_hook, run_probe, tcp_probe

Obj = dict[str, Any]
CONTAINER: Obj = {"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}

SPEC_CASES = [
    ("defaults-http-named-port", READINESS, {"httpGet": {"port": "http", "path": "healthz"}},
     ProbeSpec(READINESS, "httpGet", port=8080, path="/healthz")),
    ("numbers", LIVENESS, {"tcpSocket": {"port": 81}, "initialDelaySeconds": 2,
                           "periodSeconds": 3, "timeoutSeconds": 4, "failureThreshold": 5,
                           "successThreshold": 1},
     ProbeSpec(LIVENESS, "tcpSocket", 2.0, 3.0, 4.0, 1, 5, port=81)),
    ("exec", STARTUP, {"exec": {"command": ["cat", "/tmp/ok"]}},
     ProbeSpec(STARTUP, "exec", command=("cat", "/tmp/ok"))),
    ("readiness-success-threshold", READINESS, {"exec": {"command": ["true"]},
                                               "successThreshold": 2},
     ProbeSpec(READINESS, "exec", success_threshold=2, command=("true",))),
    ("http-headers-https", READINESS, {"httpGet": {
        "port": 443, "scheme": "HTTPS", "host": "1.2.3.4",
        "httpHeaders": [{"name": "X-A", "value": "b"}]}},
     ProbeSpec(READINESS, "httpGet", port=443, host="1.2.3.4", scheme="HTTPS",
               headers=(("X-A", "b"),))),
]


@pytest.mark.parametrize("kind,probe,want", [c[1:] for c in SPEC_CASES],
                         ids=[c[0] for c in SPEC_CASES])
def test_probe_spec(kind: str, probe: Obj, want: ProbeSpec) -> None:
    assert probe_spec(kind, probe, CONTAINER) == want


def test_container_probes_order() -> None:
    c = dict(CONTAINER, readinessProbe={"tcpSocket": {"port": 1}},
             startupProbe={"tcpSocket": {"port": 2}})
    assert [p.kind for p in container_probes(c)] == [STARTUP, READINESS]


TRACK_CASES = [
    # kind, success_threshold, failure_threshold, outcomes, results after each
    ("readiness-starts-failed", READINESS, 1, 3, [True], [True]),
    ("readiness-needs-successes", READINESS, 2, 3, [True, False, True, True],
     [False, False, False, True]),
    ("liveness-needs-failures", LIVENESS, 1, 3, [False, False, True, False, False, False],
     [True, True, True, True, True, False]),
    ("startup-once", STARTUP, 1, 2, [False, True], [False, True]),
]


@pytest.mark.parametrize("kind,st,ft,outcomes,results", [c[1:] for c in TRACK_CASES],
                         ids=[c[0] for c in TRACK_CASES])
def test_result_tracker(kind: str, st: int, ft: int, outcomes: list[bool],
                        results: list[bool]) -> None:
    t = ResultTracker(ProbeSpec(kind, "exec", success_threshold=st, failure_threshold=ft))
    got = []
    for ok in outcomes:
        t.record(ok)
        got.append(t.result)
    assert got == results


def _sock(family: int, type_: int, port: int) -> socket.socket:
    s = socket.socket(family, type_)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    s.setblocking(False)
    return s


async def test_http_and_tcp_checks_over_loopback() -> None:
    srv = BuiltinServers(PodView("p", "default/p", "web", [], lambda code: None))
    await srv.start(BuiltinPlan("web", (0,)), _sock)
    port = srv.servers[0].sockets[0].getsockname()[1]
    ok = ProbeSpec(READINESS, "httpGet", port=port, path="/healthz")
    assert await http_probe(ok, "127.0.0.1") == (True, "")
    missing = ProbeSpec(READINESS, "httpGet", port=port, path="/missing")
    assert await http_probe(missing, "127.0.0.1") == (
        False, "HTTP probe failed with statuscode: 404")
    assert await tcp_probe("127.0.0.1", port, 1.0) == (True, "")
    srv.close()
    ok_, msg = await tcp_probe("127.0.0.1", port, 1.0)
    assert not ok_ and msg == f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    ok_, msg = await http_probe(ok, "127.0.0.1")
    assert not ok_ and "connection refused" in msg


async def test_exec_check() -> None:
    calls: list[list[str]] = []

    async def fake_exec(argv: list[str], timeout: float) -> tuple[int, str]:
        calls.append(argv)
        return (0, "") if argv[0] == "true" else (1, "nope\n")

    assert await run_probe(ProbeSpec(LIVENESS, "exec", command=("true",)), "", fake_exec) == \
        (True, "")
    assert await run_probe(ProbeSpec(LIVENESS, "exec", command=("false",)), "", fake_exec) == \
        (False, "nope\n")
    assert calls == [["true"], ["false"]]


async def test_worker_on_fake_clock() -> None:
    clock = FakeClock()
    outcomes = [False, True, True, False, False]
    changes: list[bool] = []

    async def fake_exec(argv: list[str], timeout: float) -> tuple[int, str]:
        return (0 if outcomes.pop(0) else 1), ""

    spec = ProbeSpec(READINESS, "exec", initial_delay=5, period=2, success_threshold=2,
                     failure_threshold=2, command=("x",))
    w = ProbeWorker(spec, "", fake_exec, lambda wk, ok, msg: changes.append(ok), clock=clock)
    w.start()

    async def settle() -> None:
        for _ in range(10):
            await asyncio.sleep(0)

    await settle()
    clock.advance(4.9)
    await settle()
    assert len(outcomes) == 5          # still in the initial delay
    clock.advance(0.1)
    await settle()
    assert len(outcomes) == 4 and changes == []
    for _ in range(2):
        clock.advance(2)
        await settle()
    assert changes == [True] and w.result
    for _ in range(2):
        clock.advance(2)
        await settle()
    assert changes == [True, False] and not outcomes
    w.stop()


FLIP_CASES = [
    # kind, failure_threshold, outcomes, which record() calls report a change
    ("startup-never-succeeds", STARTUP, 2, [False, False, False], [False, True, False]),
    ("startup-succeeds-at-once", STARTUP, 3, [True, False], [True, False]),
    ("startup-broken-run", STARTUP, 2, [False, True], [False, True]),
    ("liveness-initially-passing", LIVENESS, 1, [True, False], [False, True]),
    ("readiness-initially-failing", READINESS, 1, [False, False], [False, False]),
]


@pytest.mark.parametrize("kind,ft,outcomes,flips", [c[1:] for c in FLIP_CASES],
                         ids=[c[0] for c in FLIP_CASES])
def test_tracker_reports_changes(kind: str, ft: int, outcomes: list[bool],
                                 flips: list[bool]) -> None:
    # A startup probe starts Unknown (kubelet): failing past the threshold is a change,
    # which is what restarts a container whose startup probe never succeeds.
    t = ResultTracker(ProbeSpec(kind, "exec", failure_threshold=ft))
    assert [t.record(ok) for ok in outcomes] == flips


HOOK_POD = "p_default(u1)"


@pytest.mark.parametrize("hook,exec_result,expected", [
    ({"exec": {"command": ["sh", "-c", "exit 0"]}}, (0, ""), None),
    ({"exec": {"command": ["sh", "-c", "exit 7"]}}, (7, "bad\n"),
     "Exec lifecycle hook ([sh -c exit 7]) for Container \"c\" in Pod \"p_default(u1)\" "
     "failed - error: command 'sh -c exit 7' exited with 7: bad\n, message: \"bad\n\""),
    ({"sleep": {"seconds": 0}}, None, None),
    ({"tcpSocket": {"port": 80}}, None, None),
    ({}, None, "Cannot run handler: invalid handler: {}"),
], ids=["exec-ok", "exec-fails", "sleep", "tcpSocket-ignored", "empty"])
async def test_run_hook(hook: Obj, exec_result: tuple[int, str] | None,
                        expected: str | None) -> None:
    async def fake_exec(argv: list[str], timeout: float) -> tuple[int, str]:
        assert exec_result is not None
        return exec_result

    assert await run_hook(hook, CONTAINER, "", fake_exec, HOOK_POD) == expected


async def test_http_hook_passes_on_any_status_fails_on_no_answer() -> None:
    srv = BuiltinServers(PodView("p", "default/p", "web", [], lambda code: None))
    await srv.start(BuiltinPlan("web", (0,)), _sock)
    port = srv.servers[0].sockets[0].getsockname()[1]
    container: Obj = {"name": "c"}
    # kubelet's hook client does not look at the status code: a 404 is a success.
    assert await run_hook({"httpGet": {"path": "/missing", "port": port,
                                       "host": "127.0.0.1"}}, container, "", None,
                          HOOK_POD) is None
    srv.close()
    msg = await run_hook({"httpGet": {"path": "/x", "port": port}}, container, "127.0.0.1",
                         None, HOOK_POD)
    assert msg is not None and msg.startswith(
        "HTTP lifecycle hook (/x) for Container \"c\" in Pod \"p_default(u1)\" failed - error:")
    assert "connection refused" in msg
