"""netd's one typed configuration object, loaded and validated once.

Every key is documented with its default in configs/netd.yaml. A file may set only
some keys; everything else keeps its default. Keys are snake_case.
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, get_type_hints

import yaml

_NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,9}[a-z0-9])?$")


class ConfigError(ValueError):
    """A config file or option that cannot be used; the message names the key."""


@dataclass(frozen=True)
class NodeConfig:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ApiConfig:
    address: str = "127.0.0.1"
    port: int = 6443
    # Bearer-token auth: "auto" = on unless the address is loopback.
    auth: str = "auto"


@dataclass(frozen=True)
class ProxyConfig:
    mode: str = "nftables"
    min_sync_interval: float = 0.0
    full_sync_period: float = 3600.0


@dataclass(frozen=True)
class DnsConfig:
    ttl: int = 5
    upstreams: list[str] = field(default_factory=lambda: ["resolv.conf"])
    pods: str = "disabled"
    query_log: bool = False
    host_address: str = ""


@dataclass(frozen=True)
class StoreConfig:
    backend: str = "sqlite"
    history_size: int = 100_000


@dataclass(frozen=True)
class Config:
    cluster_name: str = "netd"
    state_dir: str = "/var/lib/netd"
    domain: str = "cluster.local"
    service_cidr: str = "10.96.0.0/12"
    dns_ip: str = "10.96.0.10"
    pod_cidr: str = "10.244.0.0/16"
    node_cidr_size: int = 24
    node_network: str = "172.18.0.0/16"
    node_port_range: str = "30000-32767"
    node_mode: str = "netns"
    max_pods: int = 110
    nodes: list[NodeConfig] = field(default_factory=lambda: [NodeConfig("node-1")])
    log_level: str = "INFO"
    api: ApiConfig = field(default_factory=ApiConfig)
    proxy: ProxyConfig = field(default_factory=ProxyConfig)
    dns: DnsConfig = field(default_factory=DnsConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    @functools.cached_property
    def cluster_state_dir(self) -> Path:
        # Cached (the config is frozen): pod paths are built from it several times
        # per pod, and a pathlib join costs microseconds on the event loop.
        return Path(self.state_dir) / self.cluster_name

    @property
    def node_port_bounds(self) -> tuple[int, int]:
        lo, _, hi = self.node_port_range.partition("-")
        return int(lo), int(hi)


def _build(cls: type, data: Any, path: str) -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys by path."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: must be a mapping")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in known:
            raise ConfigError(f"{where}: unknown option")
        kwargs[key] = _convert(hints[key], value, where)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value, where)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: must be a number")
        return float(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: must be true or false")
        return value
    if hint is str:
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"{where}: must be a string")
        return str(value)
    origin = getattr(hint, "__origin__", None)
    if origin is list:
        (item,) = hint.__args__
        if not isinstance(value, list):
            raise ConfigError(f"{where}: must be a list")
        if item is NodeConfig:
            return [_node(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: must be a mapping")
        return {str(k): str(v) for k, v in value.items()}
    return value


def _node(value: Any, where: str) -> NodeConfig:
    # A node may be given as a bare name: `nodes: [node-1, node-2]`.
    if isinstance(value, str):
        return NodeConfig(value)
    return _build(NodeConfig, value, where)


def validate(cfg: Config) -> Config:
    if not _NAME_RE.match(cfg.cluster_name):
        raise ConfigError("cluster_name: must be 1-11 lowercase letters, digits or '-', starting "
                          "with a letter (it prefixes kernel object names of at most 15 bytes)")
    nets: dict[str, ipaddress.IPv4Network] = {}
    for key in ("service_cidr", "pod_cidr", "node_network"):
        try:
            nets[key] = ipaddress.IPv4Network(getattr(cfg, key))
        except ValueError as exc:
            raise ConfigError(f"{key}: {exc}") from None
    try:
        dns_ip = ipaddress.IPv4Address(cfg.dns_ip)
    except ValueError as exc:
        raise ConfigError(f"dns_ip: {exc}") from None
    if dns_ip not in nets["service_cidr"]:
        raise ConfigError("dns_ip: must be inside service_cidr")
    for a, b in (("service_cidr", "pod_cidr"), ("service_cidr", "node_network"),
                 ("pod_cidr", "node_network")):
        if nets[a].overlaps(nets[b]):
            raise ConfigError(f"{b}: overlaps {a}")
    if not nets["pod_cidr"].prefixlen < cfg.node_cidr_size <= 30:
        raise ConfigError("node_cidr_size: must be longer than pod_cidr's prefix and at most 30")
    m = re.fullmatch(r"(\d+)-(\d+)", cfg.node_port_range)
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)) <= 65535:
        raise ConfigError("node_port_range: must be LOW-HIGH within 1-65535")
    if not 1 <= cfg.max_pods <= 65536:
        raise ConfigError("max_pods: must be between 1 and 65536")
    if cfg.node_mode not in ("netns", "host", "simulated"):
        raise ConfigError("node_mode: must be one of netns, host, simulated")
    if cfg.proxy.mode not in ("nftables", "userspace"):
        raise ConfigError("proxy.mode: must be nftables or userspace")
    if cfg.dns.pods not in ("disabled", "insecure", "verified"):
        raise ConfigError("dns.pods: must be disabled, insecure or verified")
    if cfg.store.backend != "sqlite":
        raise ConfigError("store.backend: only sqlite is implemented")
    if cfg.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("log_level: must be DEBUG, INFO, WARNING or ERROR")
    if cfg.api.auth not in ("auto", "token", "none"):
        raise ConfigError("api.auth: must be auto, token or none")
    if not 0 <= cfg.api.port <= 65535:
        raise ConfigError("api.port: must be 0-65535")
    names = [n.name for n in cfg.nodes]
    if not names:
        raise ConfigError("nodes: at least one node is required")
    if len(set(names)) != len(names):
        raise ConfigError("nodes: names must be unique")
    return cfg


def load(path: str | Path | None = None, **overrides: Any) -> Config:
    """Defaults, then the file (if any), then command-line overrides (None = not given)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if loaded is not None:
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: must be a mapping of options")
            data = loaded
    cfg = _build(Config, data, "")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "api_port" in given:
        cfg = replace(cfg, api=replace(cfg.api, port=given.pop("api_port")))
    if given:
        cfg = replace(cfg, **given)
    return validate(cfg)
