"""Pod sandboxes: one network + UTS namespace per pod, attached to its node CNI-ptp
style (no bridge inside the node, all pod traffic crosses the node's netfilter).

Per pod (names in netd/node/names.py):
  pod netns   eth0 = podIP/32, `<gateway> dev eth0 scope link`, `default via <gateway>`,
              lo up
  UTS         a UTS namespace with the pod's hostname, made when the first process
              enters the pod (nsexec.ensure_uts): built-in servers run in the daemon,
              so a pod without processes never needs one, and nothing can observe
              its absence (`ip netns exec` does not enter a UTS namespace)
  node        veth v<hash> (alias netd:<cluster>:<ns>/<pod>) with <gateway>/32, and
              the route <podIP>/32 dev v<hash>
  files       /run/netns/<name> and /run/netd/<cluster>/uts/<name> (namespace handles),
              /etc/netns/<name>/{resolv.conf,hosts} (what `ip netns exec` shows; a link
              into /run/netd/<cluster>/etc), /run/netd/<cluster>/sandboxes/<name>.json
              (key, IP, node, hostname); /run/netd/<cluster> is a tmpfs (handles.py)

Speed: creation and deletion run in the sandbox helper process (sandboxhelper.py),
on its worker threads, out of the daemon's GIL. A worker unshares a fresh network
namespace, pins it with a bind mount on a hard link (handles.mount_point: no inode
allocated on the host's disk), and configures the pod side from inside with two
batched netlink sends (the veth is created there with its peer placed straight into
the node namespace, then eth0 without IPv6 addresses, up, address, routes); the node
side is one more batch on a socket that stays open in the node namespace; the
resolv.conf/hosts files are written in the same job. No process is forked, and file
work uses bare os calls. Sockets inside pods come from a thread of the daemon's own
(they must be the daemon's), never queued behind sandbox creations. The record is
written first, so a crash leaves something that `existing()`/`incomplete()` report
and `delete()` finishes.
"""
from __future__ import annotations

import errno
import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from collections.abc import Sequence

from netd.config import Config
from netd.node import handles, names, nl, nsexec, sandboxhelper
from netd.node.cluster_net import NodeNet

log = logging.getLogger("netd.node.sandbox")

POD_ETH0_INDEX = 2      # the first free ifindex of a fresh namespace (lo is 1)


@dataclass(frozen=True)
class Sandbox:
    key: str             # "<namespace>/<pod>"
    netns: str
    netns_path: str
    uts_path: str
    ip: str
    node_ifname: str
    node: NodeNet
    hostname: str = ""   # what the pod's UTS namespace carries once it has one


class _NodeSide:
    """The node namespace's netlink socket and handle, opened once, shared by the
    worker threads (a socket stays in the namespace it was created in)."""

    def __init__(self, node: NodeNet) -> None:
        self.lock = threading.Lock()
        if node.netns_path is None:
            self.fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            self.sock = nl.Netlink()
        else:
            self.fd = os.open(node.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            nsexec.setns(self.fd, nsexec.CLONE_NEWNET)
            self.sock = nl.Netlink()

    def close(self) -> None:
        self.sock.close()
        os.close(self.fd)


class SandboxManager:
    def __init__(self, config: Config, node: NodeNet) -> None:
        self.config = config
        self.cluster = config.cluster_name
        self.node = node
        self.workers = nsexec.workers()
        self._side: _NodeSide | None = None
        self._side_lock = threading.Lock()
        self._records = names.sandbox_dir(self.cluster)

    # ---- naming -----------------------------------------------------------------------------

    def sandbox_for(self, namespace: str, pod: str, ip: str, hostname: str = "") -> Sandbox:
        netns = names.pod_netns(self.cluster, namespace, pod)
        return Sandbox(names.pod_key(namespace, pod), netns, names.netns_path(netns),
                       names.uts_path(self.cluster, netns), ip,
                       names.pod_node_veth(namespace, pod), self.node, hostname or pod)

    def _record_path(self, netns: str) -> str:
        return f"{self._records}/{netns}.json"

    def _node_side(self) -> _NodeSide:
        # Runs on a worker thread (it may enter the node namespace to open the socket).
        with self._side_lock:
            if self._side is None:
                self._side = _NodeSide(self.node)
            return self._side

    def close(self) -> None:
        with self._side_lock:
            if self._side is not None:
                self._side.close()
                self._side = None
        sandboxhelper.release(self.config, self.node)     # a no-op if it never had it

    # ---- create -------------------------------------------------------------------------------

    async def create(self, namespace: str, pod: str, ip: str, hostname: str,
                     files: tuple[str, str] | None = None,
                     dirs: Sequence[str] = ()) -> Sandbox:
        """The pod's sandbox (adopted if complete). In the same job, off the event loop
        (in the sandbox helper process, netd.node.sandboxhelper): `files` =
        (resolv.conf, hosts) are written (write_files), and `dirs` made (the pod's
        directories; an OSError there is logged, not fatal: whoever needs the
        directory makes it then)."""
        sb = self.sandbox_for(namespace, pod, ip, hostname)
        if sandboxhelper.enabled():
            await sandboxhelper.create(self.config, self.node, namespace, pod, ip, hostname,
                                       files, dirs)
            return sb
        return await self.workers.run(self._create_with_files, sb, hostname, files, dirs)

    def _create_with_files(self, sb: Sandbox, hostname: str, files: tuple[str, str] | None,
                           dirs: Sequence[str]) -> Sandbox:
        self._create(sb, hostname)
        if files is not None:
            self.write_files(sb, *files)
        handles.make_dirs(dirs, f"sandbox {sb.key}")
        return sb

    def _create(self, sb: Sandbox, hostname: str) -> Sandbox:
        record = self._record_path(sb.netns)
        if os.path.exists(record):
            if self._complete(sb):
                return sb
            self._delete(sb)
        side = self._node_side()
        # os.open/os.write rather than open(): Python's file objects add fstat, ioctl
        # and lseeks, and every syscall on this thread is a GIL hand-off with the busy
        # event loop thread.
        _write_file(record, json.dumps({"key": sb.key, "ip": sb.ip, "node": self.node.name,
                                        "hostname": hostname}).encode(), create=True)
        gw = self.node.gateway
        try:
            nsexec.unshare(nsexec.CLONE_NEWNET)
            nsexec.bind_ns("net", sb.netns_path)
            with nl.Netlink() as sock:
                self._pod_side(sock, sb, side)
            with side.lock:
                link = nl.get_link(side.sock, sb.node_ifname)
                if link is None:
                    raise OSError(errno.ENODEV, f"veth {sb.node_ifname} vanished")
                side.sock.run([
                    nl.link_set(sb.node_ifname, index=link.index, up=True,
                                alias=names.pod_alias(self.cluster, *sb.key.split("/"))),
                    nl.addr_add(link.index, f"{gw}/32"),
                    nl.route_add(f"{sb.ip}/32", oif=link.index, replace=True),
                ])
        except OSError:
            log.warning("sandbox %s: creation failed; removing what was made", sb.key)
            self._delete(sb)
            raise
        log.debug("sandbox %s: created %s ip %s", sb.key, sb.netns, sb.ip)
        return sb

    def _pod_side(self, sock: nl.Netlink, sb: Sandbox, side: _NodeSide) -> None:
        gw = self.node.gateway
        veth = nl.with_index(nl.link_veth("eth0", sb.node_ifname, peer_netns_fd=side.fd),
                             POD_ETH0_INDEX)
        veth.ok = frozenset()   # EEXIST here means a stale node end, never our eth0
        try:
            sock.run([nl.link_set("lo", up=True), veth])
        except nl.NetlinkError as exc:
            if exc.errno != errno.EEXIST:
                raise
            # The previous sandbox of this pod is still being destroyed by the kernel
            # (namespace cleanup is asynchronous): remove its node end now.
            with side.lock:
                side.sock.run([nl.link_del(sb.node_ifname)])
            sock.run([veth])
        # The cluster is IPv4: eth0 gets no IPv6 link-local address, so no DAD or
        # router solicitation (a third of a veth's cost when it had them). This used
        # to be the new namespace's conf/default/disable_ipv6, but opening that
        # /proc/sys path costs more with every namespace on the host (the dentries of
        # all namespaces' sysctl directories share one hash chain). lo keeps ::1.
        sock.run([nl.link_set("eth0", index=POD_ETH0_INDEX, no_ipv6_addrs=True),
                  nl.link_set("eth0", index=POD_ETH0_INDEX, up=True),
                  nl.addr_add(POD_ETH0_INDEX, f"{sb.ip}/32"),
                  nl.route_add(f"{gw}/32", oif=POD_ETH0_INDEX),
                  nl.route_add("0.0.0.0/0", via=gw, oif=POD_ETH0_INDEX)])

    def _complete(self, sb: Sandbox) -> bool:
        """The record names sb.ip and the kernel objects exist (adoption)."""
        rec = _read_record(self._record_path(sb.netns))
        if rec is None or rec.get("ip") != sb.ip or rec.get("node") != self.node.name:
            return False
        if not nsexec.is_ns_handle(sb.netns_path):
            return False
        side = self._node_side()
        with side.lock:
            link = nl.get_link(side.sock, sb.node_ifname)
        return link is not None and link.up

    # ---- delete ---------------------------------------------------------------------------------

    async def delete(self, namespace: str, pod: str) -> None:
        sb = self.sandbox_for(namespace, pod, "")
        if sandboxhelper.enabled():
            await sandboxhelper.delete(self.config, self.node, namespace, pod)
        else:
            await self.workers.run(self._delete, sb)

    def _delete(self, sb: Sandbox) -> None:
        # Only the handles go: the kernel then destroys the namespace with its eth0, the
        # veth's node end and the pod route, batched in its cleanup work (a synchronous
        # RTM_DELLINK waits for an RCU grace period: ~30 deletions/s). A pod recreated
        # before that finishes removes the stale node end itself (_pod_side). Sockets
        # from open_socket keep the namespace alive: close them first.
        if self.node.netns is None:
            # Host mode: the node end lives in the host; remove it by name now.
            side = self._node_side()
            with side.lock:
                side.sock.run([nl.link_del(sb.node_ifname)])
        nsexec.unbind_ns(sb.netns_path)
        nsexec.unbind_ns(sb.uts_path)
        handles.remove_etc_dir(*handles.etc_paths(self.cluster, sb.netns))
        try:
            os.unlink(self._record_path(sb.netns))
        except FileNotFoundError:
            pass

    # ---- restart ----------------------------------------------------------------------------------

    def _records_of_node(self) -> list[tuple[str, dict[str, str]]]:
        out = []
        try:
            entries = os.listdir(self._records)
        except FileNotFoundError:
            return []
        for entry in entries:
            if not entry.endswith(".json"):
                continue
            rec = _read_record(f"{self._records}/{entry}")
            if rec is not None and rec.get("node") == self.node.name and "/" in rec.get(
                    "key", ""):
                out.append((entry[:-5], rec))
        return out

    def _scan(self) -> tuple[dict[str, Sandbox], list[str]]:
        side = self._node_side()
        with side.lock:
            links = {link.name: link for link in side.sock.links()}
            routes = {r.dst: r.oif for r in side.sock.routes()}
        good: dict[str, Sandbox] = {}
        bad: list[str] = []
        for _netns, rec in self._records_of_node():
            namespace, pod = rec["key"].split("/", 1)
            sb = self.sandbox_for(namespace, pod, rec.get("ip", ""), rec.get("hostname", ""))
            link = links.get(sb.node_ifname)
            if link is not None and link.up and routes.get(f"{sb.ip}/32") == link.index \
                    and nsexec.is_ns_handle(sb.netns_path):
                good[sb.key] = sb
            else:
                bad.append(sb.key)
        return good, bad

    def existing(self) -> dict[str, Sandbox]:
        """Sandboxes of this node whose kernel objects are all present (restart)."""
        return self.workers.call(self._scan)[0]

    def incomplete(self) -> list[str]:
        """Keys of sandboxes with a record but missing kernel objects (a crash during
        creation, or a namespace deleted behind netd's back): delete() them."""
        return self.workers.call(self._scan)[1]

    # ---- files and sockets ----------------------------------------------------------------------

    def write_files(self, sb: Sandbox, resolv_conf: str, hosts: str) -> None:
        d, link = handles.etc_paths(self.cluster, sb.netns)
        fresh = handles.make_etc_dir(d, link)
        for fname, text in zip(handles.ETC_FILES, (resolv_conf, hosts)):
            # In a directory made just now nobody can be reading yet: write in place.
            # Otherwise replace atomically (a process may be reading the old file).
            path = f"{d}/{fname}"
            tmp = path if fresh else f"{d}/.{fname}.tmp"
            _write_file(tmp, text.encode(), create=True, public=True)
            if not fresh:
                os.replace(tmp, path)

    def open_socket(self, sb: Sandbox, family: int, type: int, port: int,
                    host: str = "") -> socket.socket:
        def job() -> socket.socket:
            nsexec.enter(sb.netns_path, nsexec.CLONE_NEWNET)
            s = socket.socket(family, type | socket.SOCK_CLOEXEC)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, port))
                if type == socket.SOCK_STREAM:
                    s.listen(socket.SOMAXCONN)
                s.setblocking(False)
            except OSError:
                s.close()
                raise
            return s
        return _socket_workers().call(job)


_sockets: nsexec.NsWorkers | None = None
_sockets_lock = threading.Lock()


def _socket_workers() -> nsexec.NsWorkers:
    """A thread of its own for open_socket: a socket takes ~0.1 ms, and in the shared
    pool it waited behind every queued sandbox creation (~10 ms each) while a pod's
    container was starting."""
    global _sockets
    with _sockets_lock:
        if _sockets is None:
            _sockets = nsexec.NsWorkers(threads=1, name="netd-ns-sock")
        return _sockets


def _write_file(path: str, data: bytes, *, create: bool, public: bool = False) -> None:
    flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_CREAT | os.O_TRUNC if create else 0)
    fd = os.open(path, flags, 0o644)
    try:
        if public:
            os.fchmod(fd, 0o644)    # whatever the umask: processes in the pod read it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _read_record(path: str) -> dict[str, str] | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_records_of_node(cluster: str, node: str) -> None:
    """Forget a removed node's sandboxes (its namespace takes the veths along)."""
    d = names.sandbox_dir(cluster)
    try:
        entries = os.listdir(d)
    except FileNotFoundError:
        return
    for entry in entries:
        rec = _read_record(f"{d}/{entry}")
        if rec is None or rec.get("node") != node:
            continue
        netns = entry[:-5]
        nsexec.unbind_ns(names.netns_path(netns))
        nsexec.unbind_ns(names.uts_path(cluster, netns))
        handles.remove_etc_dir(*handles.etc_paths(cluster, netns))
        os.unlink(f"{d}/{entry}")


def remove_all_sandboxes(cluster: str) -> None:
    """Every pod namespace handle of the cluster (teardown)."""
    try:
        entries = os.listdir(names.NETNS_DIR)
    except FileNotFoundError:
        entries = []
    node_prefix = f"{cluster}_node_"
    for entry in entries:
        if names.is_cluster_netns(cluster, entry) and not entry.startswith(node_prefix):
            nsexec.unbind_ns(names.netns_path(entry))
            nsexec.unbind_ns(names.uts_path(cluster, entry))
