"""The cluster network: a bridge in the host, one network namespace per node, and
the routes that make pod and service addresses reachable from the host and between
nodes (host-gw style, no encapsulation, no NAT).

Kernel objects created (all named after the cluster, see netd/node/names.py):
  host:  bridge <c>-br with the node network's first address; veth <c>-n<i> per node
         (enslaved); routes <pod CIDR of node i> via <node i>, <service CIDR> via node 0;
         blackhole routes for the whole pod and service CIDRs at a high metric, so an
         address no node owns is dropped here instead of following the default route
         out of the machine.
  node:  netns <c>_node_<name>: lo, eth0 = node IP, default via the host, the other
         nodes' pod CIDRs via their IPs, a blackhole for the rest of the pod CIDR (so a
         vanished pod's address does not bounce node→host→node), ip_forward on and
         rp_filter loose (pod replies may come back on another interface than the
         request left by).
Host mode (config.node_mode == "host"): the host namespace is the single node; no
bridge or node namespace; pods attach to the host directly, the service CIDR is routed
onto a dummy link <c>-svc (as kube-proxy's IPVS mode does with kube-ipvs0: locally
originated connections need a route to exist before nftables' output DNAT runs), and
ip_forward is switched on (its previous value is restored at teardown).
"""
from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import shutil
import zlib
from dataclasses import dataclass

from netd.config import Config
from netd.node import handles, names, nl, nodeslots, nsexec, sandboxhelper
from netd.node.ipam import host_bridge_ip, node_internal_ip, node_pod_cidr, pod_gateway

log = logging.getLogger("netd.node.cluster_net")

SYSCTLS_NODE = {"net/ipv4/ip_forward": "1", "net/ipv4/conf/all/rp_filter": "2",
                "net/ipv4/conf/default/rp_filter": "2",
                # Pod veths' node ends: IPv4 only (IPv6 autoconf is costly per link).
                "net/ipv6/conf/default/disable_ipv6": "1"}


@dataclass(frozen=True)
class NodeNet:
    name: str
    index: int
    netns: str | None      # None in host mode (the host namespace)
    ip: str
    pod_cidr: str
    gateway: str           # first IP of pod_cidr, on the node side of every pod veth

    @property
    def netns_path(self) -> str | None:
        return None if self.netns is None else names.netns_path(self.netns)


def blackhole_metric(cluster: str) -> int:
    """A high metric unique-ish per cluster: two clusters' catch-all blackholes for the
    same CIDR can coexist and each removes only its own; any real route wins."""
    return 0x7FFF0000 + (zlib.crc32(cluster.encode()) & 0xFFFF)


def _write_sysctls(values: dict[str, str]) -> None:
    # /proc/sys/net is resolved against the opening thread's network namespace.
    for key, value in values.items():
        with open(f"/proc/sys/{key}", "w") as f:
            f.write(value)


def _read_sysctl(key: str) -> str:
    with open(f"/proc/sys/{key}") as f:
        return f.read().strip()


class ClusterNetwork:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.cluster = config.cluster_name
        self.host_mode = config.node_mode == "host"
        self._node_net = ipaddress.IPv4Network(config.node_network)
        self.host_ip = host_bridge_ip(config)
        self.metric = blackhole_metric(self.cluster)

    def node_nets(self) -> list[NodeNet]:
        cfg = self.config
        if self.host_mode:
            node = cfg.nodes[0]
            cidr = node_pod_cidr(cfg, 0)
            return [NodeNet(node.name, 0, None, _host_primary_ip(), cidr, pod_gateway(cidr))]
        out = []
        slot = nodeslots.slots(cfg)
        for node in cfg.nodes:
            i = slot[node.name]
            cidr = node_pod_cidr(cfg, i)
            names.node_host_veth(self.cluster, i)   # raises early if the name is too long
            out.append(NodeNet(node.name, i, names.node_netns(self.cluster, node.name),
                               node_internal_ip(cfg, i), cidr, pod_gateway(cidr)))
        return out

    # ---- ensure ---------------------------------------------------------------------------

    async def ensure(self) -> list[NodeNet]:
        nodes = self.node_nets()
        workers = nsexec.workers()
        if self.host_mode:
            await workers.run(self._ensure_host_mode, nodes[0])
        else:
            await workers.run(self._ensure_bridge)
            await workers.run(self._remove_stale_nodes, nodes)
            for node in nodes:
                await workers.run(self._ensure_node, node, nodes)
            await workers.run(self._ensure_host_routes, nodes)
        log.info("cluster network %s ready: %d node(s)", self.cluster, len(nodes))
        return nodes

    def _prepare_dirs(self) -> None:
        nsexec.ensure_shared_dir(names.NETNS_DIR)
        # Records, UTS handles and pods' /etc files: a tmpfs (netd/node/handles.py).
        nsexec.ensure_tmpfs(names.cluster_run_dir(self.cluster))
        nsexec.ensure_shared_dir(names.uts_dir(self.cluster))
        os.makedirs(names.sandbox_dir(self.cluster), exist_ok=True)

    def _ensure_bridge(self) -> None:
        self._prepare_dirs()
        br = names.bridge(self.cluster)
        with nl.Netlink() as sock:
            sock.run([nl.link_bridge(br)])
            link = nl.get_link(sock, br)
            assert link is not None
            sock.run([nl.addr_add(link.index, f"{self.host_ip}/{self._node_net.prefixlen}"),
                      nl.link_set(br, up=True)])

    def _ensure_node(self, node: NodeNet, nodes: list[NodeNet]) -> None:
        """Runs on a worker thread: ends inside the node namespace (the worker goes
        home afterwards)."""
        assert node.netns_path is not None
        host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if nsexec.is_ns_handle(node.netns_path):
                nsexec.enter(node.netns_path, nsexec.CLONE_NEWNET)
            else:
                if os.path.exists(node.netns_path):
                    os.unlink(node.netns_path)      # an empty leftover of a crash
                nsexec.unshare(nsexec.CLONE_NEWNET)
                nsexec.bind_ns("net", node.netns_path)
                log.info("node %s: created netns %s", node.name, node.netns)
            _write_sysctls(SYSCTLS_NODE)
            host_veth = names.node_host_veth(self.cluster, node.index)
            prefix = self._node_net.prefixlen
            with nl.Netlink() as sock:
                sock.run([nl.link_set("lo", up=True),
                          nl.link_veth("eth0", host_veth, peer_netns_fd=host_fd, up=True)])
                eth0 = nl.get_link(sock, "eth0")
                assert eth0 is not None
                reqs = [nl.addr_add(eth0.index, f"{node.ip}/{prefix}"),
                        nl.route_add("0.0.0.0/0", via=self.host_ip, oif=eth0.index,
                                     replace=True),
                        nl.route_add(self.config.pod_cidr, blackhole=True,
                                     metric=self.metric)]
                for other in nodes:
                    if other.name != node.name:
                        reqs.append(nl.route_add(other.pod_cidr, via=other.ip,
                                                 oif=eth0.index, replace=True))
                sock.run(reqs)
                # Routes through a node that was removed from the config.
                gateways = {o.ip for o in nodes} | {self.host_ip}
                sock.run([nl.route_del(r.dst, via=r.via, oif=r.oif) for r in sock.routes()
                          if r.via and r.via not in gateways])
        finally:
            os.close(host_fd)

    def _remove_stale_nodes(self, nodes: list[NodeNet]) -> None:
        """Nodes are removed by restarting with a shorter `nodes` list (issue 4): remove
        what the missing ones left in the kernel — their pods' processes and sandboxes,
        their namespaces, uplinks and the host routes through them. Their Node objects
        and pods go through the API (netd/controllers/nodelifecycle.py). Runs before the
        configured nodes are ensured, so an uplink name a removed node used is free."""
        keep = {n.name for n in nodes}
        from netd.node.cleanup import kill_pod_processes
        from netd.node.sandbox import remove_records_of_node
        records = names.sandbox_dir(self.cluster)
        gone_nodes: dict[str, set[str]] = {}
        for entry in _listdir(records):
            try:
                with open(os.path.join(records, entry)) as f:
                    rec = json.load(f)
            except (OSError, ValueError):
                continue
            node = rec.get("node") if isinstance(rec, dict) else None
            if isinstance(node, str) and node not in keep:
                gone_nodes.setdefault(node, set()).add(str(rec.get("ip") or ""))
        if gone_nodes:
            ips = set().union(*gone_nodes.values())
            killed = kill_pod_processes(self.config, ips)
            for node in gone_nodes:
                remove_records_of_node(self.cluster, node)
            log.info("removed %d sandbox(es) and %d process(es) of removed node(s) %s",
                     len(ips), killed, ", ".join(sorted(gone_nodes)))
        uplinks = {names.node_host_veth(self.cluster, n.index) for n in nodes}
        gateways = {n.ip for n in nodes}
        with nl.Netlink() as sock:
            bridge = nl.get_link(sock, names.bridge(self.cluster))
            reqs = [nl.link_del(link.name) for link in sock.links()
                    if names.is_node_host_veth(self.cluster, link.name)
                    and link.name not in uplinks]
            if bridge is not None:
                reqs += [nl.route_del(r.dst, via=r.via, oif=r.oif) for r in sock.routes()
                         if r.oif == bridge.index and r.via and r.via not in gateways]
            sock.run(reqs)
        keep_netns = {n.netns for n in nodes}
        prefix = f"{self.cluster}_node_"
        for entry in _listdir(names.NETNS_DIR):
            if entry.startswith(prefix) and entry not in keep_netns:
                nsexec.unbind_ns(names.netns_path(entry))
                log.info("removed the namespace %s of a node no longer configured", entry)

    def _ensure_host_routes(self, nodes: list[NodeNet]) -> None:
        br = names.bridge(self.cluster)
        with nl.Netlink() as sock:
            bridge = nl.get_link(sock, br)
            assert bridge is not None
            sock.run([nl.link_set(names.node_host_veth(self.cluster, n.index),
                                  master=bridge.index, up=True) for n in nodes])
            reqs = [nl.route_add(n.pod_cidr, via=n.ip, oif=bridge.index, replace=True)
                    for n in nodes]
            reqs.append(nl.route_add(self.config.service_cidr, via=nodes[0].ip,
                                     oif=bridge.index, replace=True))
            reqs += self._blackholes()
            sock.run(reqs)

    def _blackholes(self) -> list[nl.Request]:
        return [nl.route_add(cidr, blackhole=True, metric=self.metric)
                for cidr in (self.config.pod_cidr, self.config.service_cidr)]

    def _ensure_host_mode(self, node: NodeNet) -> None:
        self._prepare_dirs()
        saved = os.path.join(names.cluster_run_dir(self.cluster), "sysctl.json")
        if not os.path.exists(saved):
            with open(saved, "w") as f:
                json.dump({"net/ipv4/ip_forward": _read_sysctl("net/ipv4/ip_forward")}, f)
        _write_sysctls({"net/ipv4/ip_forward": "1"})
        svc = names.service_dummy(self.cluster)
        with nl.Netlink() as sock:
            try:
                sock.run([nl.link_dummy(svc)])
            except nl.NetlinkError as exc:
                if exc.errno != errno.EOPNOTSUPP:
                    raise
                # No dummy driver (module not loadable here): a bridge without ports
                # discards just the same.
                sock.run([nl.link_bridge(svc)])
            sock.run([nl.link_set(svc, up=True)])
            link = nl.get_link(sock, svc)
            assert link is not None
            sock.run([nl.route_add(self.config.service_cidr, oif=link.index, replace=True)]
                     + self._blackholes())

    # ---- removal ---------------------------------------------------------------------------

    async def remove_node(self, name: str) -> None:
        nodes = {n.name: n for n in self.node_nets()}
        node = nodes.get(name)
        if node is None or self.host_mode:
            return
        # The sandbox helper keeps a socket in each node it made pods on; that would
        # keep the namespace alive after its handle goes.
        sandboxhelper.release(self.config, node)
        await nsexec.workers().run(self._remove_node, node, list(nodes.values()))

    def _remove_node(self, node: NodeNet, nodes: list[NodeNet]) -> None:
        from netd.node.sandbox import remove_records_of_node
        remove_records_of_node(self.cluster, node.name)
        with nl.Netlink() as sock:
            sock.run([nl.route_del(node.pod_cidr, via=node.ip),
                      nl.link_del(names.node_host_veth(self.cluster, node.index))])
        for other in nodes:
            if other.name != node.name and other.netns_path and \
                    nsexec.is_ns_handle(other.netns_path):
                nsexec.enter(other.netns_path, nsexec.CLONE_NEWNET)
                with nl.Netlink() as sock:
                    sock.run([nl.route_del(node.pod_cidr, via=node.ip)])
        if node.netns_path:
            nsexec.unbind_ns(node.netns_path)
        log.info("node %s: removed its network", node.name)

    async def teardown(self) -> None:
        for node in self.node_nets():
            sandboxhelper.release(self.config, node)    # as in remove_node
        await nsexec.workers().run(teardown_sync, self.config)


def teardown_sync(config: Config) -> None:
    """Remove every kernel object of the cluster, found by name (also what `netd down`
    runs). Pod namespaces go first so their veths vanish with the node namespaces."""
    cluster = config.cluster_name
    metric = blackhole_metric(cluster)
    from netd.node.sandbox import remove_all_sandboxes
    remove_all_sandboxes(cluster)
    with nl.Netlink() as sock:
        links = sock.links()
        doomed = []
        for link in links:
            if link.name == names.bridge(cluster) or link.name == names.service_dummy(cluster) \
                    or names.is_node_host_veth(cluster, link.name) \
                    or names.parse_alias(cluster, link.alias) is not None:
                doomed.append(nl.link_del(link.name))
        routes = [nl.route_del(r.dst, blackhole=True, metric=metric)
                  for r in sock.routes()
                  if r.type == nl.RTN_BLACKHOLE and r.metric == metric]
        sock.run(routes + doomed)
    try:
        entries = os.listdir(names.NETNS_DIR)
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if names.is_cluster_netns(cluster, entry):
            nsexec.unbind_ns(names.netns_path(entry))
    run_dir = names.cluster_run_dir(cluster)
    saved = os.path.join(run_dir, "sysctl.json")
    if os.path.exists(saved):
        try:
            with open(saved) as f:
                _write_sysctls(json.load(f))
        except (OSError, ValueError):
            log.warning("could not restore sysctls from %s", saved, exc_info=True)
    uts = names.uts_dir(cluster)
    handles.forget(run_dir)     # this process's open inodes there (mount points' templates)
    # Layer by layer: the run directory is a tmpfs (an older netd kept it on disk,
    # with UTS handles that a tmpfs mounted over them would hide).
    while True:
        if os.path.isdir(uts):
            for entry in os.listdir(uts):
                nsexec.unbind_ns(os.path.join(uts, entry))
            nsexec.unmount_all(uts)
        if not nsexec.is_mount_point(run_dir):
            break
        nsexec.umount(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
    try:
        etc = os.listdir(names.ETC_NETNS_DIR)
    except FileNotFoundError:
        etc = []
    for entry in etc:
        if names.is_cluster_netns(cluster, entry):
            handles.remove_etc_dir(*handles.etc_paths(cluster, entry))
    log.info("cluster network %s removed", cluster)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []


def _host_primary_ip() -> str:
    """The host's own address for the InternalIP of a host-mode node: the source
    address the kernel picks toward a public destination (no packet is sent)."""
    import socket
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"
