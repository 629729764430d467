"""Deterministic names of every kernel object a cluster creates (pure).

Every name carries the cluster name so two clusters coexist and cleanup can find
exactly its own objects (docs/NETWORK.md lists them):

- bridge in the host namespace      `<cluster>-br`
- node network namespace            `<cluster>_node_<node>`
- host side of a node's uplink      `<cluster>-n<index>`
- pod network namespace             `<cluster>_<namespace>_<pod>`
- node side of a pod's veth         `v` + 10 hex of sha1("<namespace>/<pod>")
  (inside the node namespace, which carries the cluster name; in host mode the
  link's alias `netd:<cluster>:<namespace>/<pod>` marks it as the cluster's)

Underscore cannot occur in Kubernetes names (DNS labels/subdomains), so
`<cluster>_<namespace>_<pod>` parses back unambiguously.
"""
from __future__ import annotations

import functools
import hashlib

IFNAMSIZ = 15          # the kernel's limit for interface names (16 with the NUL)
NETNS_DIR = "/run/netns"          # iproute2's convention, so `ip netns exec` works
ETC_NETNS_DIR = "/etc/netns"      # iproute2 bind-mounts these over /etc in `ip netns exec`
RUN_DIR = "/run/netd"
NAME_MAX = 255         # a netns name is a file name
ALIAS_PREFIX = "netd:"


def bridge(cluster: str) -> str:
    return _ifname(f"{cluster}-br")


def node_netns(cluster: str, node: str) -> str:
    return _fit(f"{cluster}_node_{node}")


def node_host_veth(cluster: str, index: int) -> str:
    return _ifname(f"{cluster}-n{index}")


def pod_key(namespace: str, pod: str) -> str:
    return f"{namespace}/{pod}"


def pod_netns(cluster: str, namespace: str, pod: str) -> str:
    return _fit(f"{cluster}_{namespace}_{pod}")


@functools.lru_cache(maxsize=4096)
def pod_node_veth(namespace: str, pod: str) -> str:
    # Cached: asked several times per pod (sandbox, status, teardown).
    return "v" + hashlib.sha1(pod_key(namespace, pod).encode()).hexdigest()[:10]


def pod_alias(cluster: str, namespace: str, pod: str) -> str:
    return f"{ALIAS_PREFIX}{cluster}:{pod_key(namespace, pod)}"


def parse_alias(cluster: str, alias: str) -> str | None:
    """The pod key an alias names if it belongs to `cluster`."""
    prefix = f"{ALIAS_PREFIX}{cluster}:"
    if not alias.startswith(prefix):
        return None
    key = alias[len(prefix):]
    return key if key.count("/") == 1 else None


def parse_pod_netns(cluster: str, name: str) -> tuple[str, str] | None:
    """(namespace, pod) for a pod netns name of `cluster`; None for anything else
    (another cluster's, a node namespace, a shortened name)."""
    prefix = f"{cluster}_"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    parts = rest.split("_")
    if len(parts) != 2 or not all(parts) or parts[0] == "node" or "~" in rest:
        return None
    return parts[0], parts[1]


def is_cluster_netns(cluster: str, name: str) -> bool:
    return name.startswith(f"{cluster}_")


def netns_path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def etc_dir(netns: str) -> str:
    return f"{ETC_NETNS_DIR}/{netns}"


def cluster_run_dir(cluster: str) -> str:
    return f"{RUN_DIR}/{cluster}"


def uts_dir(cluster: str) -> str:
    return f"{RUN_DIR}/{cluster}/uts"


def uts_path(cluster: str, netns: str) -> str:
    return f"{uts_dir(cluster)}/{netns}"


def state_dir(cluster: str) -> str:
    """Per-pod container records (netd.node.adoption): runtime state, on the run tmpfs
    like the namespaces they describe."""
    return f"{RUN_DIR}/{cluster}/state"


def state_path(cluster: str, uid: str) -> str:
    return f"{state_dir(cluster)}/{uid}.json"


def sandbox_dir(cluster: str) -> str:
    """Per-sandbox records (key, IP, node), written before the kernel objects."""
    return f"{RUN_DIR}/{cluster}/sandboxes"


def _ifname(name: str) -> str:
    if len(name.encode()) > IFNAMSIZ:
        raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ} bytes")
    return name


def _fit(name: str) -> str:
    # A namespace (63) + pod name (253) can exceed a file name; keep a readable prefix
    # and make it unique with a hash. '~' never occurs in Kubernetes names, so such a
    # name is recognisably shortened (its key lives in the sandbox record).
    if len(name.encode()) <= NAME_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:16]
    return f"{name[:NAME_MAX - 17]}~{digest}"


def service_dummy(cluster: str) -> str:
    """Host mode: the dummy link the service CIDR is routed onto."""
    return _ifname(f"{cluster}-svc")


def is_node_host_veth(cluster: str, name: str) -> bool:
    prefix = f"{cluster}-n"
    return name.startswith(prefix) and name[len(prefix):].isdigit()
