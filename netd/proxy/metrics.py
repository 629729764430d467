"""Prometheus metrics of the proxy, with kube-proxy's names where they exist
(pkg/proxy/metrics/metrics.go; subsystem `kubeproxy`):

  kubeproxy_sync_proxy_rules_duration_seconds            histogram (every sync)
  kubeproxy_sync_full_proxy_rules_duration_seconds       histogram (full syncs)
  kubeproxy_sync_partial_proxy_rules_duration_seconds    histogram (partial syncs)
  kubeproxy_sync_proxy_rules_last_timestamp_seconds      gauge
  kubeproxy_network_programming_duration_seconds         histogram (change -> live)
  kubeproxy_sync_proxy_rules_nftables_sync_failures_total counter
  kubeproxy_sync_proxy_rules_no_local_endpoints_total    gauge {traffic_policy}

netd additions (kube-proxy's nftables mode has no object count; the iptables mode's
`sync_proxy_rules_iptables_total` is the closest, hence the analogous name):

  kubeproxy_sync_proxy_rules_nftables_objects            gauge {node, kind=chain|rule|element|set}
  netd_proxy_conntrack_entries_deleted_total             counter

Pure bookkeeping, no I/O; `render()` gives the text exposition format.
"""
from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence


def exponential(start: float, factor: float, count: int) -> list[float]:
    return [start * factor ** i for i in range(count)]


def _network_programming_buckets() -> list[float]:
    # kube-proxy: merge(linear(0.25, 0.25, 2), linear(1, 1, 59), linear(60, 5, 12),
    # linear(120, 30, 7)) — plus finer ones below 0.25 s, where netd lives.
    fine = [0.005, 0.01, 0.025, 0.05, 0.1]
    return (fine + [0.25, 0.5] + [float(i) for i in range(1, 60)] +
            [60.0 + 5 * i for i in range(12)] + [120.0 + 30 * i for i in range(7)])


class Histogram:
    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help
        self.buckets = sorted(buckets)
        self.counts = [0] * len(self.buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.counts):
            self.counts[i] += 1
        self.count += 1
        self.sum += value

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        acc = 0
        for le, n in zip(self.buckets, self.counts):
            acc += n
            yield f'{self.name}_bucket{{le="{_num(le)}"}} {acc}'
        yield f'{self.name}_bucket{{le="+Inf"}} {self.count}'
        yield f"{self.name}_sum {_num(self.sum)}"
        yield f"{self.name}_count {self.count}"


def _num(v: float) -> str:
    return repr(float(v)) if v != int(v) else f"{int(v)}"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels)
    return "{" + inner + "}"


class Family:
    """A gauge or counter with labels."""

    def __init__(self, name: str, help: str, typ: str) -> None:
        self.name, self.help, self.typ = name, help, typ
        self.values: dict[tuple[tuple[str, str], ...], float] = {}

    def set(self, value: float, **labels: str) -> None:
        self.values[tuple(sorted(labels.items()))] = value

    def inc(self, by: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0.0) + by

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def lines(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.typ}"
        for key, value in sorted(self.values.items()):
            yield f"{self.name}{_labels(key)} {_num(value)}"


class ProxyMetrics:
    def __init__(self) -> None:
        sync_buckets = exponential(0.001, 2, 15)
        self.lock = threading.Lock()
        self.sync_duration = Histogram(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds", sync_buckets)
        self.full_duration = Histogram(
            "kubeproxy_sync_full_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for full resyncs", sync_buckets)
        self.partial_duration = Histogram(
            "kubeproxy_sync_partial_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds for partial resyncs", sync_buckets)
        self.network_programming = Histogram(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds",
            _network_programming_buckets())
        self.last_timestamp = Family(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced", "gauge")
        self.failures = Family(
            "kubeproxy_sync_proxy_rules_nftables_sync_failures_total",
            "Cumulative proxy nftables sync failures", "counter")
        self.no_local = Family(
            "kubeproxy_sync_proxy_rules_no_local_endpoints_total",
            "Number of services with a Local traffic policy and no endpoints", "gauge")
        self.objects = Family(
            "kubeproxy_sync_proxy_rules_nftables_objects",
            "Number of nftables objects netd programmed, per node and kind", "gauge")
        self.conntrack_deleted = Family(
            "netd_proxy_conntrack_entries_deleted_total",
            "UDP conntrack entries deleted after endpoint changes", "counter")

    def observe_sync(self, seconds: float, full: bool, now: float) -> None:
        with self.lock:
            self.sync_duration.observe(seconds)
            (self.full_duration if full else self.partial_duration).observe(seconds)
            self.last_timestamp.set(now)

    def observe_programming(self, triggers: Iterable[float], now: float) -> None:
        with self.lock:
            for t in triggers:
                self.network_programming.observe(max(0.0, now - t))

    def render(self) -> str:
        with self.lock:
            parts: list[Iterable[str]] = [
                self.sync_duration.lines(), self.full_duration.lines(),
                self.partial_duration.lines(), self.last_timestamp.lines(),
                self.network_programming.lines(), self.failures.lines(),
                self.no_local.lines(), self.objects.lines(), self.conntrack_deleted.lines()]
            return "\n".join(line for p in parts for line in p) + "\n"


_METRICS = ProxyMetrics()


def metrics() -> ProxyMetrics:
    """The process-wide metrics (one proxy per daemon)."""
    return _METRICS


def render() -> str:
    return _METRICS.render()
