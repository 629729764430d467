"""Node agents: netd's kubelet + CNI for every configured node."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from netd.controllers.manager import ControllerContext
    from netd.node.agent import NodeAgent
    from netd.node.cluster_net import ClusterNetwork


def agents(ctx: ControllerContext, network: ClusterNetwork) -> list[NodeAgent]:
    """One NodeAgent per node of the cluster network (config order)."""
    from netd.node.agent import NodeAgent

    by_name = {n.name: n for n in ctx.config.nodes}
    out = []
    for node in network.node_nets():
        cfg = by_name.get(node.name)
        out.append(NodeAgent(ctx, network, node, labels=dict(cfg.labels) if cfg else {},
                             taints=[dict(t) for t in cfg.taints] if cfg else []))
    return out
