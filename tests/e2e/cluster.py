"""A netd daemon started as a user starts it (`netd up` in a subprocess), for e2e tests.

Each cluster gets its own name and state directory; stopping it sends SIGTERM to the
PID this fixture started and nothing else."""
from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from netd.node import names

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "configs" / "examples"


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Poll `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # the condition may raise until it holds
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f" (last error: {last_exc})" if last_exc else ""))


@dataclass
class Cluster:
    name: str
    state_dir: Path
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    settings: dict[str, Any] = field(default_factory=dict)   # the config it runs with

    @property
    def dns_ip(self) -> str:
        return str(self.settings.get("dns_ip", "10.96.0.10"))

    @property
    def pod_cidr(self) -> str:
        return str(self.settings.get("pod_cidr", "10.244.0.0/16"))

    @property
    def root(self) -> Path:
        return self.state_dir / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def server(self) -> str:
        doc = yaml.safe_load(self.kubeconfig.read_text())
        return str(doc["clusters"][0]["cluster"]["server"])

    def start(self) -> "Cluster":
        self.log_path = self.state_dir / f"{self.name}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "netd.cli.main", "up", "--name", self.name,
             "--state-dir", str(self.state_dir), "--api-port", "0", *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        log.close()
        wait_for(self._ready, 60, what=f"cluster {self.name} to be ready")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"netd up exited with {self.proc.returncode}:\n{self.logs()}")
        if not (self.root / "netd.pid").exists() or not self.kubeconfig.exists():
            return False
        with urllib.request.urlopen(self.server + "/readyz", timeout=2) as r:
            return r.status == 200

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        code = self.proc.returncode
        self.proc = None
        return code

    def down(self) -> None:
        """`netd down`: removes every kernel object and the state of this cluster."""
        subprocess.run([sys.executable, "-m", "netd.cli.main", "down", "--name", self.name,
                        "--state-dir", str(self.state_dir)], cwd=ROOT, capture_output=True,
                       timeout=120, check=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["KUBECACHEDIR"] = str(self.state_dir / "kubecache")
        return env

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        kubectl = shutil.which("kubectl")
        assert kubectl, "kubectl is required for the e2e tests (scripts/test installs one)"
        proc = subprocess.run([kubectl, *args], env=self.env(), capture_output=True, text=True,
                              input=input, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc


def alive(pid: int) -> bool:
    """A live process (not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def sandbox_helpers(daemon_pid: int) -> list[int]:
    """The daemon's sandbox helper processes (netd.node.sandboxhelper), by parent pid."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == daemon_pid and b"netd.node.sandboxhelper" in cmd:
            out.append(int(entry.name))
    return out


def container_pid(c: Cluster, uid: str, container: str) -> int:
    """The pid the node agent recorded for a container (netd.node.adoption)."""
    doc = json.loads(Path(names.state_path(c.name, uid)).read_text())
    return int(doc["containers"][container]["pid"])


# Fixed ranges some tests choose themselves; random ranges avoid them.
_TAKEN = {150, 151, 152, 153}


def own_ranges(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with address ranges of its own where it names none: two clusters on
    one host with the same ranges take each other's host routes (the default ranges
    are for one cluster a machine). Simulated nodes create no routes."""
    if config.get("node_mode", "netns") == "simulated":
        return config
    a, b, c = random.sample(sorted(set(range(100, 250)) - _TAKEN), 3)
    out = dict(config)
    if "service_cidr" not in out:
        out["service_cidr"] = f"10.{b}.0.0/16"
        out.setdefault("dns_ip", f"10.{b}.0.10")
    out.setdefault("pod_cidr", f"10.{a}.0.0/16")
    out.setdefault("node_network", f"10.{c}.0.0/24")
    return out


def new_cluster(tmp: Path, *extra: str, config: dict[str, Any] | None = None) -> Cluster:
    """A cluster with its own name. Unless `--config` is among `extra`, it runs with the
    given config (default: simulated nodes — these tests are about the API and the
    controllers; the real node network has its own tests), with ranges of its own."""
    name = "e2e" + secrets.token_hex(3)
    args = list(extra)
    settings: dict[str, Any] = {}
    if "--config" not in args:
        settings = own_ranges(config if config is not None else {"node_mode": "simulated"})
        path = tmp / f"{name}.yaml"
        path.write_text(yaml.safe_dump(settings))
        args += ["--config", str(path)]
    return Cluster(name, tmp, args, settings=settings)
