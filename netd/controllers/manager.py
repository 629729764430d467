"""The controller manager: one shared informer factory, one event recorder, and every
controller, each a supervised task started after the informers it reads."""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from netd.client.client import Client
from netd.client.controller import Controller
from netd.client.informer import InformerFactory
from netd.config import Config
from netd.controllers.events import EventRecorder
from netd.registry.objectapi import ObjectAPI
from netd.supervise import Supervisor

log = logging.getLogger("netd.controllers")

# (module, class) of every workload/service/storage controller. Each class takes a
# ControllerContext and subclasses netd.client.controller.Controller.
CONTROLLERS: tuple[tuple[str, str], ...] = (
    ("netd.controllers.endpoints", "EndpointsController"),
    ("netd.controllers.endpointslice", "EndpointSliceController"),
    ("netd.controllers.replicaset", "ReplicaSetController"),
    ("netd.controllers.replicaset", "ReplicationControllerController"),
    ("netd.controllers.deployment", "DeploymentController"),
    ("netd.controllers.statefulset", "StatefulSetController"),
    ("netd.controllers.daemonset", "DaemonSetController"),
    ("netd.controllers.scheduler", "Scheduler"),
    ("netd.controllers.volumes", "PersistentVolumeBinder"),
    ("netd.controllers.nodelifecycle", "NodeLifecycleController"),
)


@dataclass
class ControllerContext:
    api: ObjectAPI
    client: Client
    factory: InformerFactory
    recorder: EventRecorder
    config: Config
    now: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))


def build_context(api: ObjectAPI, config: Config) -> ControllerContext:
    return ControllerContext(api=api, client=Client(api), factory=InformerFactory(api),
                             recorder=EventRecorder(api), config=config)


def build_controllers(ctx: ControllerContext,
                      names: tuple[tuple[str, str], ...] = CONTROLLERS) -> list[Controller]:
    out = []
    for module, cls in names:
        factory = getattr(importlib.import_module(module), cls)
        out.append(factory(ctx))
    return out


def start(ctx: ControllerContext, controllers: list[Controller], sup: Supervisor) -> None:
    """Informers first (controllers wait for them to sync), then the controllers."""
    sup.start("event-recorder", ctx.recorder.run)
    for inf in ctx.factory.informers:
        sup.start(f"informer:{inf.name}", inf.run)
    for c in controllers:
        sup.start(f"controller:{c.name}", c.run)


def synced(ctx: ControllerContext) -> bool:
    return all(inf.has_synced for inf in ctx.factory.informers)
