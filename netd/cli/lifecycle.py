"""`netd up` and `netd down`: run a cluster in the foreground, remove a cluster."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from netd import config as configmod
from netd import logfmt
from netd.config import Config, ConfigError

log = logging.getLogger("netd.cli")


def add_parsers(sub: Any) -> None:
    up = sub.add_parser("up", help="run a cluster in the foreground")
    _common(up)
    up.add_argument("--config", help="YAML config file (configs/netd.yaml documents it)")
    up.add_argument("--api-port", type=int, help="API port on the API address (0: any free)")
    up.add_argument("-f", "--filename", action="append", default=[],
                    help="manifest to apply once the cluster is ready (repeatable)")
    up.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop a cluster and remove everything it created")
    _common(down)
    down.add_argument("--config", help="YAML config file")
    down.add_argument("--keep-state", action="store_true",
                      help="keep the state directory (store, kubeconfig)")
    down.set_defaults(func=cmd_down)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", dest="cluster_name", help="cluster name (default: netd)")
    p.add_argument("--state-dir", help="state directory (default: /var/lib/netd)")


def _config(args: argparse.Namespace) -> Config:
    return configmod.load(getattr(args, "config", None), cluster_name=args.cluster_name,
                          state_dir=args.state_dir, api_port=getattr(args, "api_port", None),
                          log_level=getattr(args, "log_level", None))


def load_manifests(paths: list[str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for p in paths:
        files = sorted(Path(p).glob("*.y*ml")) if Path(p).is_dir() else [Path(p)]
        for f in files:
            try:
                loaded = list(yaml.safe_load_all(f.read_text()))
            except OSError as exc:
                raise ConfigError(f"{f}: {exc.strerror}") from None
            except yaml.YAMLError as exc:
                raise ConfigError(f"{f}: not valid YAML: {exc}") from None
            for doc in loaded:
                if doc is None:
                    continue
                if not isinstance(doc, dict):
                    raise ConfigError(f"{f}: each document must be a mapping")
                if doc.get("kind", "").endswith("List") and isinstance(doc.get("items"), list):
                    docs.extend(doc["items"])
                else:
                    docs.append(doc)
    return docs


def cmd_up(args: argparse.Namespace) -> int:
    try:
        cfg = _config(args)
        docs = load_manifests(args.filename)
    except ConfigError as exc:
        print(f"netd: {exc}", file=sys.stderr)
        return 2
    logfmt.setup(cfg.log_level)
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    return asyncio.run(_run(cfg, docs))


async def _run(cfg: Config, docs: list[dict[str, Any]]) -> int:
    from netd.daemon import AlreadyRunning, Daemon, apply_manifests

    daemon = Daemon(cfg)
    try:
        await daemon.start()
    except AlreadyRunning as exc:
        print(f"netd: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"netd: cannot start: {exc}", file=sys.stderr)
        await daemon.stop()
        return 1
    try:
        print(f"cluster {cfg.cluster_name} is up\n"
              f"  API:        http://{cfg.api.address}:{daemon.api_port}\n"
              f"  socket:     {daemon.paths.socket}\n"
              f"  kubeconfig: {daemon.paths.kubeconfig}\n"
              f"  use:        export KUBECONFIG={daemon.paths.kubeconfig}; kubectl get pods -A",
              flush=True)
        if docs:
            assert daemon.api is not None
            for line in await apply_manifests(daemon.api, docs):
                print(line, flush=True)
        return await daemon.run_until_signalled()
    finally:
        await daemon.stop()


def cmd_down(args: argparse.Namespace) -> int:
    try:
        cfg = _config(args)
    except ConfigError as exc:
        print(f"netd: {exc}", file=sys.stderr)
        return 2
    root = cfg.cluster_state_dir
    pid_file = root / "netd.pid"
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            pid = 0
        if pid and _is_netd(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                print(f"netd: daemon {pid} did not stop within 30s", file=sys.stderr)
                return 1
    import netd.node.cleanup  # noqa: F401  (registers the node network's remover)
    import netd.proxy.service  # noqa: F401  (registers the host-mode table's remover)
    from netd.cleanup import remove_cluster_objects

    remove_cluster_objects(cfg)
    if not args.keep_state and root.exists():
        shutil.rmtree(root)
    print(f"cluster {cfg.cluster_name} removed")
    return 0


def _alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped by its parent) has stopped: it counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _is_netd(pid: int) -> bool:
    # Only signal a process that is really a netd daemon (the pid file may be stale).
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(b"netd" in part for part in cmdline)
