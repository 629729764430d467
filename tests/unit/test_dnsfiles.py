"""resolv.conf and hosts content as the kubelet writes them."""
from __future__ import annotations

from typing import Any

import pytest

from netd.node.dnsfiles import hosts_file, parse_resolv_conf, pod_hostname, resolv_conf, \
    uts_hostname

Obj = dict[str, Any]
HOST = "nameserver 192.168.1.1\nnameserver 8.8.8.8\nsearch corp.example lan\noptions edns0\n"


def pod(spec: Obj | None = None, name: str = "web-0", ns: str = "shop") -> Obj:
    return {"metadata": {"name": name, "namespace": ns}, "spec": spec or {}}


RESOLV_CASES = [
    ("cluster-first-default", {},
     "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
     "nameserver 10.96.0.10\noptions ndots:5\n"),
    ("cluster-first-explicit", {"dnsPolicy": "ClusterFirst"},
     "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
     "nameserver 10.96.0.10\noptions ndots:5\n"),
    ("host-network-falls-back-to-default", {"dnsPolicy": "ClusterFirst", "hostNetwork": True},
     "search corp.example lan\nnameserver 192.168.1.1\nnameserver 8.8.8.8\noptions edns0\n"),
    ("cluster-first-with-host-net", {"dnsPolicy": "ClusterFirstWithHostNet",
                                     "hostNetwork": True},
     "search shop.svc.cluster.local svc.cluster.local cluster.local\n"
     "nameserver 10.96.0.10\noptions ndots:5\n"),
    ("default", {"dnsPolicy": "Default"},
     "search corp.example lan\nnameserver 192.168.1.1\nnameserver 8.8.8.8\noptions edns0\n"),
    ("none", {"dnsPolicy": "None", "dnsConfig": {
        "nameservers": ["1.2.3.4"], "searches": ["ns1.svc.cluster-domain.example",
                                                  "my.dns.search.suffix"],
        "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}},
     "search ns1.svc.cluster-domain.example my.dns.search.suffix\nnameserver 1.2.3.4\n"
     "options ndots:2 edns0\n"),
    ("merge-overrides-option-and-dedups", {"dnsConfig": {
        "nameservers": ["10.96.0.10", "9.9.9.9"], "searches": ["svc.cluster.local", "x.y"],
        "options": [{"name": "ndots", "value": "1"}, {"name": "single-request-reopen"}]}},
     "search shop.svc.cluster.local svc.cluster.local cluster.local x.y\n"
     "nameserver 10.96.0.10\nnameserver 9.9.9.9\noptions ndots:1 single-request-reopen\n"),
    ("at-most-three-nameservers", {"dnsPolicy": "Default", "dnsConfig": {
        "nameservers": ["1.1.1.1", "2.2.2.2"]}},
     "search corp.example lan\nnameserver 192.168.1.1\nnameserver 8.8.8.8\n"
     "nameserver 1.1.1.1\noptions edns0\n"),
    ("none-empty", {"dnsPolicy": "None"}, ""),
]


@pytest.mark.parametrize("spec,want", [c[1:] for c in RESOLV_CASES],
                         ids=[c[0] for c in RESOLV_CASES])
def test_resolv_conf(spec: Obj, want: str) -> None:
    got = resolv_conf(pod(spec), dns_ip="10.96.0.10", domain="cluster.local",
                      host_resolv=HOST)
    assert got == want


def test_parse_resolv_conf_comments_and_domain() -> None:
    conf = parse_resolv_conf("# c\nsearch a b\ndomain only\nnameserver 1.1.1.1 ; x\n"
                             "options a b\noptions c\n")
    assert (conf.nameservers, conf.searches, conf.options) == (
        ["1.1.1.1"], ["only"], ["a", "b", "c"])


HEADER = ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
          "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
          "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")

HOSTS_CASES = [
    ("plain", {}, HEADER + "10.244.0.5\tweb-0\n"),
    ("hostname", {"hostname": "db"}, HEADER + "10.244.0.5\tdb\n"),
    ("subdomain", {"subdomain": "nginx"},
     HEADER + "10.244.0.5\tweb-0.nginx.shop.svc.cluster.local\tweb-0\n"),
    ("aliases", {"hostAliases": [{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                                 {"ip": "10.1.2.3", "hostnames": ["foo.remote"]}]},
     HEADER + "10.244.0.5\tweb-0\n\n# Entries added by HostAliases.\n"
     "127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n"),
]


@pytest.mark.parametrize("spec,want", [c[1:] for c in HOSTS_CASES],
                         ids=[c[0] for c in HOSTS_CASES])
def test_hosts_file(spec: Obj, want: str) -> None:
    assert hosts_file(pod(spec), ["10.244.0.5"], "cluster.local") == want


HOSTNAME_CASES = [
    ("name", {}, "web-0", ("web-0", "")),
    ("long-name-cut", {}, "a" * 62 + "-bbb", ("a" * 62, "")),
    ("fqdn", {"subdomain": "s"}, "web-0", ("web-0", "web-0.s.shop.svc.cluster.local")),
]


@pytest.mark.parametrize("spec,name,want", [c[1:] for c in HOSTNAME_CASES],
                         ids=[c[0] for c in HOSTNAME_CASES])
def test_pod_hostname(spec: Obj, name: str, want: tuple[str, str]) -> None:
    assert pod_hostname(pod(spec, name=name), "cluster.local") == want


def test_uts_hostname_as_fqdn() -> None:
    p = pod({"subdomain": "s", "setHostnameAsFQDN": True})
    assert uts_hostname(p, "cluster.local") == "web-0.s.shop.svc.cluster.local"
    assert uts_hostname(pod({"subdomain": "s"}), "cluster.local") == "web-0"


def test_pod_status_conditions_carry_times_not_reasons() -> None:
    # Regression: reason and message must never land in lastTransitionTime.
    from datetime import datetime, timezone

    from netd.node.podstatus import pod_status

    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}, "status": {}}
    status = pod_status(pod, sandbox_ready=True, inits=[], containers=[], init_failed=False,
                        pod_ip="10.244.0.5", host_ip="172.18.0.2", now=now)
    for cond in status["conditions"]:
        assert cond["lastTransitionTime"] == "2026-01-02T03:04:05Z", cond
