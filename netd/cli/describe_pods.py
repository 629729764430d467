"""kubectl's Pod describer and the container, volume and pod-template sections the
workload describers share (k8s.io/kubectl pkg/describe), over plain dicts."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from netd.api.printers.common import as_dict, as_int, as_list, as_str, get, since
from netd.cli.describe import (
    Related, Writer, annotations_multiline, controller_of, describe_events, go_value,
    int_or_string, labels_multiline, rfc1123z, tolerations_multiline,
)
from netd.cli.quantity import parse_quantity

Obj = dict[str, Any]

# --------------------------------------------------------------------- containers


def _ports(ports: list[Obj], key: str) -> str:
    out = []
    for p in ports:
        text = f"{as_int(p.get(key))}/{as_str(p.get('protocol')) or 'TCP'}"
        if p.get("name"):
            text += f" ({p['name']})"
        out.append(text)
    return ", ".join(out)


def _probe(p: Obj) -> str:
    attrs = (f"delay={as_int(p.get('initialDelaySeconds'))}s "
             f"timeout={as_int(p.get('timeoutSeconds'))}s "
             f"period={as_int(p.get('periodSeconds'))}s "
             f"successThreshold={as_int(p.get('successThreshold'))} "
             f"failureThreshold={as_int(p.get('failureThreshold'))}")
    if p.get("exec") is not None:
        return f"exec {go_value(as_list(get(p, 'exec', 'command')))} {attrs}"
    if p.get("httpGet") is not None:
        h = as_dict(p["httpGet"])
        port, host = int_or_string(h.get("port")), as_str(h.get("host"))
        if port:
            host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        scheme = (as_str(h.get("scheme")) or "HTTP").lower()
        return f"http-get {scheme}://{host}{as_str(h.get('path'))} {attrs}"
    if p.get("tcpSocket") is not None:
        t = as_dict(p["tcpSocket"])
        return f"tcp-socket {as_str(t.get('host'))}:{int_or_string(t.get('port'))} {attrs}"
    if p.get("grpc") is not None:
        g = as_dict(p["grpc"])
        return f"grpc <pod>:{as_int(g.get('port'))} {as_str(g.get('service'))} {attrs}"
    return f"unknown {attrs}"


def _state(w: Writer, title: str, state: Obj) -> None:
    if "running" in state:
        w.write(2, f"{title}:\tRunning\n")
        w.write(3, f"Started:\t{rfc1123z(get(state, 'running', 'startedAt'))}\n")
    elif "terminated" in state:
        t = as_dict(state["terminated"])
        w.write(2, f"{title}:\tTerminated\n")
        if t.get("reason"):
            w.write(3, f"Reason:\t{t['reason']}\n")
        if t.get("message"):
            w.write(3, f"Message:\t{t['message']}\n")
        w.write(3, f"Exit Code:\t{as_int(t.get('exitCode'))}\n")
        if as_int(t.get("signal")) > 0:
            w.write(3, f"Signal:\t{t['signal']}\n")
        w.write(3, f"Started:\t{rfc1123z(t.get('startedAt'))}\n")
        w.write(3, f"Finished:\t{rfc1123z(t.get('finishedAt'))}\n")
    else:
        w.write(2, f"{title}:\tWaiting\n")
        reason = as_str(get(state, "waiting", "reason"))
        if reason:
            w.write(3, f"Reason:\t{reason}\n")


def _resources(w: Writer, res: Obj, level: int) -> None:
    for title in ("limits", "requests"):
        values = as_dict(res.get(title))
        if values:
            w.write(level, f"{title.title()}:\n")
        for name in sorted(values):
            w.write(level + 1, f"{name}:\t{go_value(values[name])}\n")


def field_ref_value(pod: Obj | None, path: str) -> str:
    """EnvValueRetriever. kubectl converts the field label through its own scheme,
    which knows only the metadata.name/metadata.namespace defaults, so every other
    downward-API field describes as empty."""
    if pod is None or path not in ("metadata.name", "metadata.namespace"):
        return ""
    return as_str(get(pod, "metadata", path.split(".", 1)[1]))


def _env(w: Writer, c: Obj, pod: Obj | None) -> None:
    if c.get("envFrom"):
        w.write(2, "Environment Variables from:\n")
        for e in map(as_dict, as_list(c.get("envFrom"))):
            src, ref = ("ConfigMap", as_dict(e.get("configMapRef"))) if e.get("configMapRef") \
                else ("Secret", as_dict(e.get("secretRef")))
            opt = "true" if ref.get("optional") else "false"
            prefix = f" with prefix '{e['prefix']}'" if e.get("prefix") else ""
            w.write(3, f"{as_str(ref.get('name'))}\t{src}{prefix}\tOptional: {opt}\n")
    env = [as_dict(e) for e in as_list(c.get("env"))]
    w.write(2, "Environment:" + ("" if env else "\t<none>") + "\n")
    for e in env:
        name = as_str(e.get("name"))
        vf = as_dict(e.get("valueFrom"))
        if not vf:
            for i, part in enumerate(as_str(e.get("value")).split("\n")):
                w.write(3, f"{name}:\t{part}\n" if i == 0 else f"\t{part}\n")
        elif vf.get("fieldRef"):
            ref = as_dict(vf["fieldRef"])
            value = field_ref_value(pod, as_str(ref.get("fieldPath")))
            w.write(3, f"{name}:\t{value} ({as_str(ref.get('apiVersion'))}:"
                       f"{as_str(ref.get('fieldPath'))})\n")
        elif vf.get("resourceFieldRef"):
            w.write(3, f"{name}:\t ({as_str(get(vf, 'resourceFieldRef', 'resource'))})\n")
        elif vf.get("secretKeyRef") or vf.get("configMapKeyRef"):
            secret = bool(vf.get("secretKeyRef"))
            ref = as_dict(vf.get("secretKeyRef") or vf.get("configMapKeyRef"))
            opt = "true" if ref.get("optional") else "false"
            where = "in secret" if secret else "of config map"
            w.write(3, f"{name}:\t<set to the key '{as_str(ref.get('key'))}' {where} "
                       f"'{as_str(ref.get('name'))}'>\tOptional: {opt}\n")


def _mounts(w: Writer, c: Obj) -> None:
    mounts = sorted(map(as_dict, as_list(c.get("volumeMounts"))),
                    key=lambda m: as_str(m.get("mountPath")))
    w.write(2, "Mounts:" + ("" if mounts else "\t<none>") + "\n")
    for m in mounts:
        flags = ["ro" if m.get("readOnly") else "rw"]
        if m.get("subPath"):
            flags.append(f'path="{m["subPath"]}"')
        w.write(3, f"{as_str(m.get('mountPath'))} from {as_str(m.get('name'))} "
                   f"({','.join(flags)})\n")


def describe_containers(w: Writer, label: str, containers: list[Obj],
                        statuses: list[Obj] | None, space: str = "",
                        pod: Obj | None = None) -> None:
    by_name = {as_str(s.get("name")): s for s in map(as_dict, statuses or [])}
    w.write(0, f"{space}{label}:{'' if containers else ' <none>'}\n")
    for c in map(as_dict, containers):
        status = by_name.get(as_str(c.get("name")))
        w.write(1, f"{' ' if space else ''}{as_str(c.get('name'))}:\n")
        if status is not None:
            w.write(2, f"Container ID:\t{as_str(status.get('containerID'))}\n")
        w.write(2, f"Image:\t{as_str(c.get('image'))}\n")
        if status is not None:
            w.write(2, f"Image ID:\t{as_str(status.get('imageID'))}\n")
        ports = [as_dict(p) for p in as_list(c.get("ports"))]
        for title, key in (("Port", "containerPort"), ("Host Port", "hostPort")):
            text = _ports(ports, key)
            if "," in text:
                w.write(2, f"{title}s:\t{text}\n")
            else:
                w.write(2, f"{title}:\t{text or '<none>'}\n")
        for title, key in (("Command", "command"), ("Args", "args")):
            if c.get(key):
                w.write(2, f"{title}:\n")
                for item in as_list(c.get(key)):
                    for part in str(item).split("\n"):
                        w.write(3, f"{part}\n")
        if status is not None:
            _state(w, "State", as_dict(status.get("state")))
            last = as_dict(status.get("lastState"))
            if "terminated" in last:
                _state(w, "Last State", last)
            w.write(2, f"Ready:\t{'True' if status.get('ready') else 'False'}\n")
            w.write(2, f"Restart Count:\t{as_int(status.get('restartCount'))}\n")
        _resources(w, as_dict(c.get("resources")), 2)
        for title, key in (("Liveness", "livenessProbe"), ("Readiness", "readinessProbe"),
                           ("Startup", "startupProbe")):
            if c.get(key) is not None:
                w.write(2, f"{title}:\t{_probe(as_dict(c[key]))}\n")
        _env(w, c, pod)
        _mounts(w, c)


_VOLUME_TEXT = {
    "emptyDir": "EmptyDir (a temporary directory that shares a pod's lifetime)",
    "hostPath": "HostPath (bare host directory volume)",
    "configMap": "ConfigMap (a volume populated by a ConfigMap)",
    "secret": "Secret (a volume populated by a Secret)",
    "persistentVolumeClaim": "PersistentVolumeClaim (a reference to a PersistentVolumeClaim "
                             "in the same namespace)",
    "projected": "Projected (a volume that contains injected data from multiple sources)",
    "downwardAPI": "DownwardAPI (a volume populated by information about the pod)",
}


def describe_volumes(w: Writer, volumes: list[Obj], space: str = "") -> None:
    if not volumes:
        w.write(0, f"{space}Volumes:\t<none>\n")
        return
    w.write(0, f"{space}Volumes:\n")
    for v in map(as_dict, volumes):
        w.write(1, f"{' ' if space else ''}{as_str(v.get('name'))}:\n")
        kind = next((k for k in _VOLUME_TEXT if k in v), "")
        if not kind:
            w.write(1, "<unknown>\n")
            continue
        src = as_dict(v[kind])
        w.write(2, f"Type:\t{_VOLUME_TEXT[kind]}\n")
        if kind == "emptyDir":
            w.write(2, f"Medium:\t{as_str(src.get('medium'))}\n")
            w.write(2, f"SizeLimit:\t{go_value(src.get('sizeLimit') or '<unset>')}\n")
        elif kind == "hostPath":
            w.write(2, f"Path:\t{as_str(src.get('path'))}\n")
            w.write(2, f"HostPathType:\t{as_str(src.get('type')) or '<none>'}\n")
        elif kind in ("configMap", "secret"):
            title = "Name" if kind == "configMap" else "SecretName"
            key = "name" if kind == "configMap" else "secretName"
            w.write(2, f"{title}:\t{as_str(src.get(key))}\n")
            w.write(2, f"Optional:\t{'true' if src.get('optional') else 'false'}\n")
        elif kind == "persistentVolumeClaim":
            w.write(2, f"ClaimName:\t{as_str(src.get('claimName'))}\n")
            w.write(2, f"ReadOnly:\t{'true' if src.get('readOnly') else 'false'}\n")


def describe_pod_template(w: Writer, template: Obj) -> None:
    w.write(0, "Pod Template:\n")
    meta, spec = as_dict(template.get("metadata")), as_dict(template.get("spec"))
    labels_multiline(w, "  Labels", meta.get("labels"))
    if meta.get("annotations"):
        annotations_multiline(w, "  Annotations", meta.get("annotations"))
    if spec.get("serviceAccountName"):
        w.write(1, f"Service Account:\t{spec['serviceAccountName']}\n")
    if spec.get("initContainers"):
        describe_containers(w, "Init Containers", as_list(spec["initContainers"]), None, "  ")
    describe_containers(w, "Containers", as_list(spec.get("containers")), None, "  ")
    describe_volumes(w, as_list(spec.get("volumes")), "  ")
    if spec.get("priorityClassName"):
        w.write(1, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    labels_multiline(w, "  Node-Selectors", spec.get("nodeSelector"))
    tolerations_multiline(w, "Tolerations", spec.get("tolerations"), "  ")


# ---------------------------------------------------------------------------- pod


def qos_class(pod: Obj) -> str:
    """The status field when set; else v1 qos.GetPodQOS over the containers."""
    given = as_str(get(pod, "status", "qosClass"))
    if given:
        return given
    containers = [as_dict(c) for c in as_list(get(pod, "spec", "containers")) +
                  as_list(get(pod, "spec", "initContainers"))]
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    guaranteed = True
    for c in containers:
        req = {k: v for k, v in as_dict(get(c, "resources", "requests")).items()
               if k in ("cpu", "memory")}
        lim = {k: v for k, v in as_dict(get(c, "resources", "limits")).items()
               if k in ("cpu", "memory")}
        requests.update(req)
        limits.update(lim)
        if set(lim) != {"cpu", "memory"}:
            guaranteed = False
        for k, v in req.items():
            if k in lim and parse_quantity(v) != parse_quantity(lim[k]):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def describe_pod(pod: Obj, rel: Related, now: datetime) -> str:
    w = Writer()
    meta, spec, status = (as_dict(pod.get(k)) for k in ("metadata", "spec", "status"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Namespace:\t{as_str(meta.get('namespace'))}\n")
    if spec.get("priority") is not None:
        w.write(0, f"Priority:\t{go_value(spec['priority'])}\n")
    if spec.get("priorityClassName"):
        w.write(0, f"Priority Class Name:\t{spec['priorityClassName']}\n")
    if spec.get("runtimeClassName"):
        w.write(0, f"Runtime Class Name:\t{spec['runtimeClassName']}\n")
    if spec.get("serviceAccountName"):
        w.write(0, f"Service Account:\t{spec['serviceAccountName']}\n")
    node = as_str(spec.get("nodeName"))
    w.write(0, f"Node:\t{node + '/' + as_str(status.get('hostIP')) if node else '<none>'}\n")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{rfc1123z(status['startTime'])}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    phase = as_str(status.get("phase"))
    if meta.get("deletionTimestamp") and phase not in ("Failed", "Succeeded"):
        w.write(0, f"Status:\tTerminating (lasts {since(meta['deletionTimestamp'], now)})\n")
        w.write(0, f"Termination Grace Period:\t"
                   f"{as_int(meta.get('deletionGracePeriodSeconds'))}s\n")
    else:
        w.write(0, f"Status:\t{phase}\n")
    for key, title in (("reason", "Reason"), ("message", "Message")):
        if status.get(key):
            w.write(0, f"{title}:\t{status[key]}\n")
    w.write(0, f"IP:\t{as_str(status.get('podIP'))}\n")
    ips = [as_str(as_dict(i).get("ip")) for i in as_list(status.get("podIPs"))]
    if ips:
        w.write(0, "IPs:\n")
        for ip in ips:
            w.write(1, f"IP:\t{ip}\n")
    else:
        w.write(0, "IPs:\t<none>\n")
    if controller_of(pod):
        w.write(0, f"Controlled By:\t{controller_of(pod)}\n")
    if status.get("nominatedNodeName"):
        w.write(0, f"NominatedNodeName:\t{status['nominatedNodeName']}\n")
    if spec.get("initContainers"):
        describe_containers(w, "Init Containers", as_list(spec["initContainers"]),
                            as_list(status.get("initContainerStatuses")), pod=pod)
    describe_containers(w, "Containers", as_list(spec.get("containers")),
                        as_list(status.get("containerStatuses")), pod=pod)
    conditions = [as_dict(c) for c in as_list(status.get("conditions"))]
    if conditions:
        w.write(0, "Conditions:\n  Type\tStatus\n")
        for c in conditions:
            w.write(1, f"{as_str(c.get('type'))} \t{as_str(c.get('status'))} \n")
    describe_volumes(w, as_list(spec.get("volumes")))
    w.write(0, f"QoS Class:\t{qos_class(pod)}\n")
    labels_multiline(w, "Node-Selectors", spec.get("nodeSelector"))
    tolerations_multiline(w, "Tolerations", spec.get("tolerations"))
    describe_events(w, rel.events, now)
    return w.text()
