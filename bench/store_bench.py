"""Store micro-benchmark: creates/s of ~1.5 KB pods, list latency, watch wake-up latency.

Prints each figure beside a baseline measured in the same run (these machines are
noisy; only ratios compare): raw sqlite3 INSERT+COMMIT of the same bytes in WAL mode
for writes, and a bare asyncio.Event set->wake for watch delivery.

    .venv/bin/python bench/store_bench.py [--pods 10000] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import tempfile
import time
from typing import Any

import orjson

from netd.store.base import WatchEvent
from netd.store.sqlite import SQLiteStore


def make_pod(i: int) -> dict[str, Any]:
    """A pod shaped like what kubectl + defaulting produce, ~1.5 KB encoded."""
    name = f"web-7d4b9c8f6-{i:06d}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": f"ns-{i % 10}", "uid": f"6f1c2a4e-0000-4000-8000-{i:012d}",
            "creationTimestamp": "2025-01-01T00:00:00Z", "generateName": "web-7d4b9c8f6-",
            "labels": {"app": "web", "pod-template-hash": "7d4b9c8f6", "tier": "frontend"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                 "name": "web-7d4b9c8f6", "uid": "1b2c3d4e-0000-4000-8000-1",
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": [{
                "name": "web", "image": "registry.example/web:1.25.3",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "production"},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {
                            "apiVersion": "v1", "fieldPath": "metadata.name"}}}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080,
                                               "scheme": "HTTP"},
                                   "periodSeconds": 10, "timeoutSeconds": 1,
                                   "successThreshold": 1, "failureThreshold": 3},
                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                              "requests": {"cpu": "100m", "memory": "128Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent",
            }],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "serviceAccount": "default", "nodeName": "node-1", "schedulerName":
            "default-scheduler", "enableServiceLinks": True, "priority": 0,
            "preemptionPolicy": "PreemptLowerPriority",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
        },
        "status": {"phase": "Running", "podIP": f"10.244.{i // 250 % 256}.{i % 250 + 2}",
                   "hostIP": "172.18.0.2", "qosClass": "Burstable",
                   "startTime": "2025-01-01T00:00:01Z",
                   "conditions": [{"type": t, "status": "True",
                                   "lastTransitionTime": "2025-01-01T00:00:02Z"}
                                  for t in ("Initialized", "Ready", "ContainersReady",
                                            "PodScheduled")]},
    }


def baseline_sqlite(path: str, pods: list[dict[str, Any]]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (key TEXT PRIMARY KEY, data BLOB)")
    t0 = time.perf_counter()
    for i, pod in enumerate(pods):
        db.execute("BEGIN")
        db.execute("INSERT INTO t VALUES (?, ?)", (str(i), orjson.dumps(pod)))
        db.execute("COMMIT")
    dt = time.perf_counter() - t0
    db.close()
    return len(pods) / dt


async def bench_store(path: str, pods: list[dict[str, Any]]) -> dict[str, float]:
    store = SQLiteStore(path)
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    for pod in pods:
        m = pod["metadata"]
        await store.create("pods", m["namespace"], m["name"], pod)
    out["creates_per_s"] = len(pods) / (time.perf_counter() - t0)

    samples = []
    for _ in range(20):
        t = time.perf_counter()
        items, _rev = store.list("pods")
        samples.append(time.perf_counter() - t)
    out["list_all_cached_ms"] = statistics.median(samples) * 1e3
    samples = []
    for i in range(20):
        first = store.get("pods", pods[i]["metadata"]["namespace"], pods[i]["metadata"]["name"])
        assert first is not None
        await store.update("pods", first.namespace, first.name, first.obj, first.rv)
        t = time.perf_counter()
        items, _rev = store.list("pods")
        samples.append(time.perf_counter() - t)
    out["list_all_after_write_ms"] = statistics.median(samples) * 1e3
    out["list_count"] = len(items)

    # Commit-to-wake latency: a consumer task timestamps each batch it receives.
    watcher = store.watch("pods", None, store.revision)
    lat: list[float] = []
    sent: dict[int, float] = {}
    done = asyncio.Event()
    n_updates = 2000

    async def consume() -> None:
        seen = 0
        async for batch in watcher:
            now = time.perf_counter()
            for ev in batch:
                lat.append(now - sent[ev.rv])
            seen += len(batch)
            if seen >= n_updates:
                done.set()
                return

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    for i in range(n_updates):
        cur = store.get("pods", pods[i]["metadata"]["namespace"], pods[i]["metadata"]["name"])
        assert cur is not None
        res = await store.update("pods", cur.namespace, cur.name, cur.obj, cur.rv)
        sent[res.rv] = time.perf_counter()
        # Yield so the consumer wakes per write, as under a real HTTP workload.
        await asyncio.sleep(0)
    out["updates_per_s"] = n_updates / (time.perf_counter() - t0)
    await done.wait()
    await task
    lat.sort()
    out["watch_p50_us"] = lat[len(lat) // 2] * 1e6
    out["watch_p99_us"] = lat[int(len(lat) * 0.99)] * 1e6
    await store.close()

    t0 = time.perf_counter()
    reopened = SQLiteStore(path)
    out["reopen_ms"] = (time.perf_counter() - t0) * 1e3
    await reopened.close()
    return out


async def baseline_event(n: int) -> float:
    ev = asyncio.Event()
    lat: list[float] = []
    stamp = [0.0]

    async def consume() -> None:
        for _ in range(n):
            await ev.wait()
            lat.append(time.perf_counter() - stamp[0])
            ev.clear()

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    for _ in range(n):
        stamp[0] = time.perf_counter()
        ev.set()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    await task
    lat.sort()
    return lat[int(len(lat) * 0.99)] * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    pods = [make_pod(i) for i in range(args.pods)]
    size = statistics.mean(len(orjson.dumps(p)) for p in pods[:100])
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        base = baseline_sqlite(os.path.join(d, "base.db"), pods)
        res = asyncio.run(bench_store(os.path.join(d, "store.db"), pods))
        ev_p99 = asyncio.run(baseline_event(2000))
    print(f"pod size                 {size:8.0f} B")
    print(f"baseline sqlite inserts  {base:8.0f} /s")
    print(f"store creates            {res['creates_per_s']:8.0f} /s  "
          f"(ratio {res['creates_per_s'] / base:.2f} of baseline)")
    print(f"store updates (+watch)   {res['updates_per_s']:8.0f} /s")
    print(f"list {int(res['list_count'])} pods (cached)  {res['list_all_cached_ms']:8.3f} ms")
    print(f"list after a write       {res['list_all_after_write_ms']:8.3f} ms")
    print(f"watch wake p50           {res['watch_p50_us']:8.1f} us")
    print(f"watch wake p99           {res['watch_p99_us']:8.1f} us  "
          f"(bare Event p99 {ev_p99:.1f} us)")
    print(f"reopen + load            {res['reopen_ms']:8.1f} ms")


if __name__ == "__main__":
    main()
