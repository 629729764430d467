from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from netd import config
from netd.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_match_documented_file() -> None:
    # configs/netd.yaml documents every option with its default: loading it must
    # give exactly the built-in defaults.
    assert config.load(ROOT / "configs" / "netd.yaml") == config.load(None)


def test_documented_file_names_every_option() -> None:
    doc = yaml.safe_load((ROOT / "configs" / "netd.yaml").read_text())
    top = {f for f in config.Config.__dataclass_fields__}
    assert set(doc) == top
    for section, cls in (("api", config.ApiConfig), ("proxy", config.ProxyConfig),
                         ("dns", config.DnsConfig), ("store", config.StoreConfig)):
        assert set(doc[section]) == set(cls.__dataclass_fields__), section


def test_partial_file_keeps_other_defaults(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("proxy: {mode: userspace}\n")
    cfg = config.load(f)
    assert cfg.proxy.mode == "userspace"
    assert cfg.proxy.min_sync_interval == 0.0
    assert cfg.service_cidr == "10.96.0.0/12"


def test_three_node_example() -> None:
    cfg = config.load(ROOT / "configs" / "three-nodes.yaml")
    assert [n.name for n in cfg.nodes] == ["node-1", "node-2", "node-3"]


def test_overrides_win(tmp_path: Path) -> None:
    cfg = config.load(None, cluster_name="c1", state_dir=str(tmp_path), api_port=0)
    assert cfg.cluster_name == "c1" and cfg.api.port == 0
    assert cfg.cluster_state_dir == tmp_path / "c1"


@pytest.mark.parametrize("text,message", [
    ("bogus: 1\n", "bogus: unknown option"),
    ("proxy: {mode: ipvs}\n", "proxy.mode: must be nftables or userspace"),
    ("api: {port: x}\n", "api.port: must be an integer"),
    ("dns_ip: 10.0.0.1\n", "dns_ip: must be inside service_cidr"),
    ("pod_cidr: 10.96.0.0/16\n", "pod_cidr: overlaps service_cidr"),
    ("node_port_range: 5-2\n", "node_port_range"),
    ("cluster_name: Bad_Name\n", "cluster_name"),
    ("nodes: []\n", "nodes: at least one node"),
    ("nodes: [a, a]\n", "nodes: names must be unique"),
    ("- a\n- b\n", "must be a mapping"),
    ("a: [\n", "not valid YAML"),
], ids=["unknown", "proxy-mode", "port-type", "dns-ip", "overlap", "port-range", "name",
        "no-nodes", "dup-nodes", "not-mapping", "bad-yaml"])
def test_bad_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as exc:
        config.load(f)
    assert message in str(exc.value)
