"""The node's view for exec / attach / logs / port-forward: which sandbox a pod has, how
a command runs in one of its containers, its running instance's stdio, where its logs
are. One PodRuntime per node agent, registered by node name in RUNTIMES; the streaming
endpoints (netd.apiserver.streaming) use only this."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from netd.node.sandbox import Sandbox

if TYPE_CHECKING:
    from netd.node.containerio import ContainerIO
    from netd.node.workloads import PodWorker

Mount = tuple[str, str, bool]


class PodRuntime:
    def __init__(self, node_name: str) -> None:
        self.node_name = node_name
        self.workers: dict[str, PodWorker] = {}      # "ns/name" -> worker

    def _worker(self, ns: str, pod: str) -> PodWorker | None:
        return self.workers.get(f"{ns}/{pod}")

    def sandbox(self, ns: str, pod: str) -> Sandbox | None:
        w = self._worker(ns, pod)
        return w.sandbox if w is not None else None

    def exec_context(self, ns: str, pod: str, container: str
                     ) -> tuple[Sandbox, dict[str, str], list[Mount], str | None] | None:
        """(sandbox, env, mounts, working dir) of a container, or None when the pod or
        container is not running here."""
        w = self._worker(ns, pod)
        if w is None or w.sandbox is None:
            return None
        ctx = w.exec_context(container)
        if ctx is None:
            return None
        env, mounts, cwd = ctx
        return w.sandbox, env, mounts, cwd

    def log_path(self, ns: str, pod: str, container: str, previous: bool = False
                 ) -> Path | None:
        w = self._worker(ns, pod)
        return w.log_path(container, previous) if w is not None else None

    def attach(self, ns: str, pod: str, container: str) -> ContainerIO | None:
        """The container's running instance to attach to: subscribe()/unsubscribe(q),
        write_stdin(data), close_stdin(), resize(width, height), and `tty`, `stdin`
        (open), `stdin_once`. None when the pod or container is not on this node;
        LookupError naming the state when the container is not running."""
        w = self._worker(ns, pod)
        return w.attach(container) if w is not None else None

    def container_running(self, ns: str, pod: str, container: str) -> bool:
        w = self._worker(ns, pod)
        return w is not None and w.running(container)

    def containers(self, ns: str, pod: str) -> list[str]:
        w = self._worker(ns, pod)
        return w.container_names() if w is not None else []


RUNTIMES: dict[str, PodRuntime] = {}
