"""A pod's /etc/resolv.conf and /etc/hosts content, as the kubelet writes them (pure).

resolv.conf (kubelet pkg/kubelet/network/dns, written by the runtime in containerd's
order: `search`, then one `nameserver` line each, then `options`):
- ClusterFirst (and ClusterFirstWithHostNet): the cluster DNS IP, search
  `<ns>.svc.<domain> svc.<domain> <domain>`, `options ndots:5`. A pod with
  hostNetwork and plain ClusterFirst falls back to Default, as kubelet does.
  Departure: kubelet also appends the node's own search domains; emulated nodes have
  none of their own, and the host's would leak the machine's private names into every
  pod, so none are appended.
- Default: the host's resolv.conf (nameservers, search, options).
- None: only spec.dnsConfig.
Then spec.dnsConfig is merged: nameservers and searches appended (duplicates dropped),
options merged by name with the pod's value winning. Limits as kubelet applies them:
3 nameservers, 32 search domains.

hosts (kubelet managedHostsFileContent): the localhost boilerplate, the pod's IP with
its FQDN and hostname (FQDN only when spec.subdomain is set), then hostAliases under
their own comment.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_HOSTNAME = 63


@dataclass
class ResolvConf:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines += [f"nameserver {ns}" for ns in self.nameservers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


def parse_resolv_conf(text: str) -> ResolvConf:
    """The parts of a resolv.conf kubelet reads (the last `search` line wins, as in
    glibc; `domain` counts as a one-element search)."""
    out = ResolvConf()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            out.nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            out.searches = fields[1:]
        elif fields[0] == "options":
            out.options.extend(fields[1:])
    return out


def effective_dns_policy(spec: Obj) -> str:
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    host_network = bool(spec.get("hostNetwork"))
    if policy == "ClusterFirst" and host_network:
        return "Default"
    if policy == "ClusterFirstWithHostNet":
        return "ClusterFirst"
    return policy


def _dedup(items: list[str]) -> list[str]:
    return list(dict.fromkeys(i for i in items if i))


def _merge_options(base: list[str], extra: list[Obj]) -> list[str]:
    merged: dict[str, str] = {}
    for text in base:
        merged[text.partition(":")[0]] = text
    for opt in extra:
        name = str(opt.get("name") or "")
        if not name:
            continue
        value = opt.get("value")
        merged[name] = f"{name}:{value}" if value not in (None, "") else name
    return list(merged.values())


def resolv_conf(pod: Obj, *, dns_ip: str, domain: str, host_resolv: str = "") -> str:
    """The resolv.conf text for `pod`; host_resolv is the host's file (Default policy)."""
    spec = pod.get("spec") or {}
    ns = (pod.get("metadata") or {}).get("namespace") or "default"
    policy = effective_dns_policy(spec)
    if policy == "ClusterFirst":
        conf = ResolvConf([dns_ip], [f"{ns}.svc.{domain}", f"svc.{domain}", domain],
                          ["ndots:5"])
    elif policy == "Default":
        conf = parse_resolv_conf(host_resolv)
    else:   # None
        conf = ResolvConf()
    extra = spec.get("dnsConfig") or {}
    conf.nameservers = _dedup(conf.nameservers + [str(s) for s in
                                                  extra.get("nameservers") or []])
    conf.searches = _dedup(conf.searches + [str(s) for s in extra.get("searches") or []])
    conf.options = _merge_options(conf.options, [o for o in extra.get("options") or []
                                                 if isinstance(o, dict)])
    conf.nameservers = conf.nameservers[:MAX_NAMESERVERS]
    conf.searches = conf.searches[:MAX_SEARCHES]
    return conf.render()


def pod_hostname(pod: Obj, domain: str) -> tuple[str, str]:
    """(hostname, fqdn-or-"") as kubelet's GeneratePodHostNameAndDomain: spec.hostname
    or the pod name cut to 63 characters (trailing '-'/'.' trimmed); the FQDN
    `<hostname>.<subdomain>.<ns>.svc.<domain>` when spec.subdomain is set."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    hostname = spec.get("hostname") or meta.get("name") or ""
    if len(hostname) > MAX_HOSTNAME:
        hostname = hostname[:MAX_HOSTNAME].rstrip("-.")
    sub = spec.get("subdomain")
    fqdn = f"{hostname}.{sub}.{meta.get('namespace') or 'default'}.svc.{domain}" \
        if sub else ""
    return hostname, fqdn


def uts_hostname(pod: Obj, domain: str) -> str:
    """What `hostname` prints inside the pod: the FQDN with setHostnameAsFQDN."""
    hostname, fqdn = pod_hostname(pod, domain)
    if fqdn and (pod.get("spec") or {}).get("setHostnameAsFQDN"):
        return fqdn[:64]
    return hostname


HOSTS_HEADER = ("# Kubernetes-managed hosts file.\n"
                "127.0.0.1\tlocalhost\n"
                "::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\n"
                "fe00::0\tip6-mcastprefix\n"
                "fe00::1\tip6-allnodes\n"
                "fe00::2\tip6-allrouters\n")


def hosts_file(pod: Obj, pod_ips: list[str], domain: str) -> str:
    hostname, fqdn = pod_hostname(pod, domain)
    out = [HOSTS_HEADER]
    for ip in pod_ips:
        out.append(f"{ip}\t{fqdn}\t{hostname}\n" if fqdn else f"{ip}\t{hostname}\n")
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if aliases:
        out.append("\n# Entries added by HostAliases.\n")
        for alias in aliases:
            if not isinstance(alias, dict):
                continue
            names = "\t".join(str(h) for h in alias.get("hostnames") or [])
            out.append(f"{alias.get('ip', '')}\t{names}\n")
    return "".join(out)
