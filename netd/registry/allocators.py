"""ClusterIP and NodePort allocation in the write path, as an admission plugin (as
kube-apiserver's service registry does it, pkg/registry/core/service/storage/alloc.go).

- ClusterIPs come from ranges.ClusterIPAllocator (random from the upper band; a
  requested IP honoured or rejected with the allocator's words inside a field error:
  `spec.clusterIPs: Invalid value: []string{"10.96.0.5"}: failed to allocate IP
  10.96.0.5: provided IP is already allocated`); ipFamilies / ipFamilyPolicy are filled
  in as a single-stack 1.32 cluster does (initIPFamilyFields).
- nodePorts for NodePort/LoadBalancer Services, requested or allocated; ports of one
  Service sharing a port number (dns 53/UDP + dns-tcp 53/TCP) share one nodePort, as
  initNodePorts does; healthCheckNodePort for LoadBalancer + externalTrafficPolicy Local.
- Values an update gives up (type change, removed port) are released only once the
  update is committed: kube-apiserver defers them to the end of its transaction. Here a
  released value stays taken until the store shows its owner no longer holds it
  (checked lazily, see `_settle`), so a failed update or a concurrent request can never
  hand out an address that is still in use.
- Dry runs: ObjectAPI runs the returned undo, so nothing leaks.

State is rebuilt from the store's Services when the plugin is built, so a restart
never duplicates an allocation.
"""
from __future__ import annotations

import ipaddress
import logging
import random
from typing import Any, Iterable

from netd.api import errors
from netd.api.kinds import ResourceType
from netd.api.servicespec import (drop_type_dependent_fields, held_ips, held_ports,
                                  needs_cluster_ip, needs_hc_node_port, needs_node_ports,
                                  normalize_cluster_ips, patch_allocated_values,
                                  should_allocate_node_ports)
from netd.api.validation.common import go_strings
from netd.registry.admission import AdmissionPlugin, PluginBase, Undo
from netd.registry.ranges import (AllocationError, ClusterIPAllocator, NodePortAllocator,
                                  RangeFull)
from netd.store.base import Store

log = logging.getLogger("netd.registry.allocators")

Obj = dict[str, Any]


def _owner(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _invalid(obj: Obj, path: str, value: Any, detail: str) -> errors.Invalid:
    return errors.Invalid("Service", (obj.get("metadata") or {}).get("name", ""),
                          [errors.invalid(path, value, detail)])


class _Txn:
    """What one request took and gave up; undo() restores the allocators."""

    def __init__(self, plugin: "ServiceAllocation", owner: str) -> None:
        self.plugin = plugin
        self.owner = owner
        self.ips: list[str] = []
        self.ports: list[int] = []
        self.released_ips: list[str] = []
        self.released_ports: list[int] = []

    def undo(self) -> None:
        p = self.plugin
        for ip in self.ips:
            if p.ips.owner_of(ip) == self.owner:
                p.ips.release(ip)
        for port in self.ports:
            if p.ports.owner_of(port) == self.owner:
                p.ports.release(port)
        for ip in self.released_ips:
            p.pending_ips.pop(ip, None)
        for port in self.released_ports:
            p.pending_ports.pop(port, None)

    def result(self) -> Undo | None:
        if self.ips or self.ports or self.released_ips or self.released_ports:
            return self.undo
        return None


class ServiceAllocation(PluginBase):
    """The admission plugin: ClusterIPs, ipFamilies/ipFamilyPolicy, nodePorts and
    healthCheckNodePort of Services, on create, update and delete."""

    def __init__(self, ips: ClusterIPAllocator, ports: NodePortAllocator,
                 store: Store | None = None) -> None:
        self.ips = ips
        self.ports = ports
        self.store = store
        # Values an update released, still marked until the store shows them free.
        self.pending_ips: dict[str, str] = {}
        self.pending_ports: dict[int, str] = {}
        if store is not None:
            self.rebuild(store)

    # ---- restart ----------------------------------------------------------------------

    def rebuild(self, store: Store) -> None:
        """Mark every value the stored Services hold (the store is the truth)."""
        items, _ = store.list("services")
        for item in items:
            spec = item.obj.get("spec") or {}
            owner = _owner(item.obj)
            for ip in held_ips(spec):
                try:
                    self.ips.allocate(ip, owner)
                except AllocationError as exc:
                    # Outside a since-changed service_cidr, or held twice: keep serving,
                    # say so (kube-apiserver's repair loop reports the same way).
                    log.warning("service %s: cluster IP %s: %s", owner, ip, exc)
            for port in held_ports(spec):
                try:
                    self.ports.allocate(port, owner)
                except AllocationError as exc:
                    log.warning("service %s: node port %d: %s", owner, port, exc)
        log.debug("allocators rebuilt: %d cluster IPs, %d node ports", self.ips.used,
                  self.ports.used)

    def _settle(self) -> None:
        """Free released values whose owner's stored object no longer holds them (its
        update committed); keep the others (update still in flight or failed)."""
        if not self.pending_ips and not self.pending_ports:
            return
        for ip, owner in list(self.pending_ips.items()):
            if ip not in self._stored_values(owner)[0]:
                self.pending_ips.pop(ip)
                if self.ips.owner_of(ip) == owner:
                    self.ips.release(ip)
        for port, owner in list(self.pending_ports.items()):
            if port not in self._stored_values(owner)[1]:
                self.pending_ports.pop(port)
                if self.ports.owner_of(port) == owner:
                    self.ports.release(port)

    def _stored_values(self, owner: str) -> tuple[list[str], list[int]]:
        if self.store is None:
            return [], []
        ns, _, name = owner.partition("/")
        found = self.store.get("services", ns, name)
        if found is None:
            return [], []
        spec = found.obj.get("spec") or {}
        return held_ips(spec), held_ports(spec)

    # ---- admission ----------------------------------------------------------------------

    async def on_create(self, rt: ResourceType, obj: Obj, dry_run: bool) -> Undo | None:
        if rt.kind != "Service" or rt.group:
            return None
        self._settle()
        spec = obj.setdefault("spec", {})
        txn = _Txn(self, _owner(obj))
        try:
            if needs_cluster_ip(spec):
                normalize_cluster_ips(spec)
                self._init_families(obj, spec)
                self._alloc_cluster_ips(obj, spec, txn)
            if needs_node_ports(spec):
                self._alloc_node_ports(obj, spec, set(), txn)
            if needs_hc_node_port(spec):
                self._alloc_hc(obj, spec, 0, txn)
        except BaseException:
            txn.undo()
            raise
        return txn.result()

    async def on_update(self, rt: ResourceType, new: Obj, old: Obj,
                        dry_run: bool) -> Undo | None:
        if rt.kind != "Service" or rt.group:
            return None
        self._settle()
        spec = new.setdefault("spec", {})
        old_spec = old.get("spec") or {}
        drop_type_dependent_fields(spec, old_spec)
        patch_allocated_values(spec, old_spec)
        txn = _Txn(self, _owner(new))
        try:
            old_ips = held_ips(old_spec)
            if needs_cluster_ip(spec):
                normalize_cluster_ips(spec)
                self._init_families(new, spec)
                if not old_ips or not held_ips(spec):
                    self._alloc_cluster_ips(new, spec, txn)
            for ip in old_ips:
                if ip not in held_ips(spec):
                    self._release_later_ip(ip, txn)
            old_ports = held_ports(old_spec)
            if needs_node_ports(spec):
                self._alloc_node_ports(new, spec, set(old_ports), txn)
            old_hc = old_spec.get("healthCheckNodePort") if needs_hc_node_port(old_spec) else 0
            if needs_hc_node_port(spec):
                self._alloc_hc(new, spec, old_hc or 0, txn)
            for port in old_ports:
                if port not in held_ports(spec):
                    self._release_later_port(port, txn)
        except BaseException:
            txn.undo()
            raise
        return txn.result()

    async def on_delete(self, rt: ResourceType, obj: Obj) -> None:
        if rt.kind != "Service" or rt.group:
            return
        spec = obj.get("spec") or {}
        owner = _owner(obj)
        for ip in held_ips(spec):
            self.pending_ips.pop(ip, None)
            if self.ips.owner_of(ip) == owner:
                self.ips.release(ip)
        for port in held_ports(spec):
            self.pending_ports.pop(port, None)
            if self.ports.owner_of(port) == owner:
                self.ports.release(port)

    # ---- steps ----------------------------------------------------------------------------

    def _release_later_ip(self, ip: str, txn: _Txn) -> None:
        if self.ips.owner_of(ip) == txn.owner:
            self.pending_ips[ip] = txn.owner
            txn.released_ips.append(ip)

    def _release_later_port(self, port: int, txn: _Txn) -> None:
        if self.ports.owner_of(port) == txn.owner:
            self.pending_ports[port] = txn.owner
            txn.released_ports.append(port)

    def _init_families(self, obj: Obj, spec: Obj) -> None:
        """initIPFamilyFields for a single-stack cluster of the allocator's family."""
        fam = self.ips.family
        ips = spec.get("clusterIPs") or []
        headless = bool(ips) and ips[0] == "None"
        families = list(spec.get("ipFamilies") or [])
        if spec.get("ipFamilyPolicy") is None:
            two = len(ips) == 2 or len(families) == 2
            spec["ipFamilyPolicy"] = "RequireDualStack" if two else "SingleStack"
        errs: list[errors.FieldError] = []
        for i, ip in enumerate(ips):
            if ip == "None":
                break
            try:
                got = "IPv4" if ipaddress.ip_address(ip).version == 4 else "IPv6"
            except ValueError:
                continue  # validation already reported it
            if i >= len(families):
                if got != fam:
                    errs.append(errors.invalid(f"spec.clusterIPs[{i}]", go_strings(list(ips)),
                                               f"{got} is not configured on this cluster"))
                else:
                    families.append(got)
        if errs:
            raise errors.Invalid("Service", obj["metadata"].get("name", ""), errs)
        if headless and not spec.get("selector"):
            # Headless without selector may name both families even on a single-stack
            # cluster (its endpoints are user-managed).
            if not families:
                families = [fam]
            if len(families) < 2 and spec["ipFamilyPolicy"] != "SingleStack":
                families.append("IPv6" if families[0] == "IPv4" else "IPv4")
            spec["ipFamilies"] = families
            return
        if spec["ipFamilyPolicy"] == "RequireDualStack":
            errs.append(errors.invalid("spec.ipFamilyPolicy", "RequireDualStack",
                                       "this cluster is not configured for dual-stack "
                                       "services"))
        for i, f in enumerate(families):
            if f != fam:
                errs.append(errors.invalid(f"spec.ipFamilies[{i}]", f,
                                           "not configured on this cluster"))
        if errs:
            raise errors.Invalid("Service", obj["metadata"].get("name", ""), errs)
        spec["ipFamilies"] = families or [fam]

    def _alloc_cluster_ips(self, obj: Obj, spec: Obj, txn: _Txn) -> None:
        ips = spec.get("clusterIPs") or []
        if ips and ips[0] == "None":
            spec["clusterIP"] = "None"
            spec["clusterIPs"] = ["None"]
            return
        if ips:
            ip = ips[0]
            try:
                self.ips.allocate(ip, txn.owner)
            except AllocationError as exc:
                raise _invalid(obj, "spec.clusterIPs", go_strings(list(ips)),
                               f"failed to allocate IP {ip}: {exc}") from None
        else:
            try:
                ip = self.ips.allocate_next(txn.owner)
            except RangeFull as exc:
                raise errors.InternalError(
                    f"Internal error occurred: failed to allocate a serviceIP: {exc}") from None
        txn.ips.append(ip)
        spec["clusterIP"] = ip
        spec["clusterIPs"] = [ip]

    def _alloc_node_ports(self, obj: Obj, spec: Obj, owned: set[int], txn: _Txn) -> None:
        """initNodePorts / updateNodePorts: requested ports honoured (those the Service
        already holds need nothing), missing ones allocated when the type wants them;
        ports sharing a port number share a nodePort."""
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        auto = should_allocate_node_ports(spec)
        by_number: dict[Any, int] = {}
        for i, sp in enumerate(ports):
            want = sp.get("nodePort") or 0
            if not want and not auto:
                continue
            if not want:
                want = by_number.get(sp.get("port"), 0) or next(
                    (p.get("nodePort") for p in ports[i + 1:]
                     if p.get("port") == sp.get("port") and p.get("nodePort")), 0)
            if want:
                if want not in owned and want not in txn.ports:
                    try:
                        self.ports.allocate(want, txn.owner)
                    except AllocationError as exc:
                        raise _invalid(obj, f"spec.ports[{i}].nodePort", want,
                                       str(exc)) from None
                    txn.ports.append(want)
            else:
                try:
                    want = self.ports.allocate_next(txn.owner)
                except RangeFull as exc:
                    raise errors.InternalError(
                        f"Internal error occurred: failed to allocate a nodePort: {exc}"
                    ) from None
                txn.ports.append(want)
            sp["nodePort"] = want
            by_number.setdefault(sp.get("port"), want)

    def _alloc_hc(self, obj: Obj, spec: Obj, old: int, txn: _Txn) -> None:
        want = spec.get("healthCheckNodePort") or 0
        if want and want == old:
            return
        if want:
            try:
                self.ports.allocate(want, txn.owner)
            except AllocationError as exc:
                raise _invalid(obj, "spec.healthCheckNodePort", want, str(exc)) from None
        else:
            try:
                want = self.ports.allocate_next(txn.owner)
            except RangeFull as exc:
                raise errors.InternalError(
                    f"Internal error occurred: failed to allocate a nodePort: {exc}") from None
        txn.ports.append(want)
        spec["healthCheckNodePort"] = want


def plugins(config: Any, store: Store, *,
            rng: random.Random | None = None) -> list[AdmissionPlugin]:
    """The admission plugins the daemon adds to ObjectAPI (after NamespaceLifecycle),
    with their state rebuilt from `store`. `config` is a netd.config.Config."""
    ips = ClusterIPAllocator(config.service_cidr, rng=rng)
    ports = NodePortAllocator(config.node_port_range, rng=rng)
    return [ServiceAllocation(ips, ports, store)]


def find_allocation(api_plugins: Iterable[Any]) -> ServiceAllocation | None:
    """The ServiceAllocation among an ObjectAPI's plugins (tests, status reporting)."""
    for p in api_plugins:
        if isinstance(p, ServiceAllocation):
            return p
    return None


__all__ = ["AllocationError", "ClusterIPAllocator", "NodePortAllocator", "RangeFull",
           "ServiceAllocation", "drop_type_dependent_fields", "find_allocation",
           "patch_allocated_values", "plugins"]
