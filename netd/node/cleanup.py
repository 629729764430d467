"""`netd down` for the node network: registers the remover that deletes every kernel
object of the cluster by name (netd/node/cluster_net.teardown_sync).

Imported for its side effect by whoever wires the node agent (daemon/CLI)."""
from __future__ import annotations

import os

from netd import cleanup
from netd.config import Config


def remove_node_network(config: Config) -> None:
    if config.node_mode == "simulated" or os.geteuid() != 0:
        # Nothing was created without root; never fail `netd down` for it.
        return
    from netd.node.cluster_net import teardown_sync
    teardown_sync(config)


cleanup.register(remove_node_network)
