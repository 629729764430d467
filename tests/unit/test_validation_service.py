"""Service, Endpoints and EndpointSlice validation, including clusterIP immutability."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from netd.api.defaults import apply_defaults
from netd.api.validation import validate_create, validate_status_update, validate_update
from tests.unit.test_validation_kinds import texts, valid

IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def svc(**spec: Any) -> dict[str, Any]:
    obj = {"metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}], **spec}}
    for k, v in list(obj["spec"].items()):
        if v is None:
            del obj["spec"][k]
    apply_defaults("Service", obj)
    return obj


CREATE_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("clusterip", svc(), []),
    ("nodeport", svc(type="NodePort", ports=[{"port": 80, "nodePort": 30080}]), []),
    ("loadbalancer", svc(type="LoadBalancer"), []),
    ("headless-no-ports", svc(clusterIP="None", ports=None), []),
    ("explicit-clusterip", svc(clusterIP="10.96.0.20"), []),
    ("dual-stack", svc(clusterIPs=["10.96.0.20", "fd00::20"], ipFamilies=["IPv4", "IPv6"],
                       ipFamilyPolicy="PreferDualStack"), []),
    ("externalname", svc(type="ExternalName", externalName="db.example.com.", ports=None,
                         selector=None), []),
    ("ports-required", svc(ports=None), ["spec.ports: Required value"]),
    # targetPort defaults to port, so it is reported too (as Kubernetes does).
    ("port-range", svc(ports=[{"port": 70000}]),
     ["spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
      "spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ("port-zero", svc(ports=[{"port": 0, "targetPort": 80}]),
     ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("names-required-for-many", svc(ports=[{"port": 80}, {"port": 443}]),
     ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
    ("names-unique", svc(ports=[{"name": "web", "port": 80}, {"name": "web", "port": 443}]),
     ['spec.ports[1].name: Duplicate value: "web"']),
    ("protocol", svc(ports=[{"port": 80, "protocol": "HTTP"}]),
     ['spec.ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", '
      '"UDP"']),
    ("target-port-range", svc(ports=[{"port": 80, "targetPort": 65536}]),
     ["spec.ports[0].targetPort: Invalid value: 65536: must be between 1 and 65535, inclusive"]),
    ("target-port-zero-defaults-to-port", svc(ports=[{"port": 80, "targetPort": 0}]), []),
    ("target-port-name", svc(ports=[{"port": 80, "targetPort": "web_http"}]),
     ['spec.ports[0].targetPort: Invalid value: "web_http": must contain only alpha-numeric '
      'characters (a-z, 0-9), and hyphens (-)']),
    ("target-port-numeric-string", svc(ports=[{"port": 80, "targetPort": "8080"}]),
     ['spec.ports[0].targetPort: Invalid value: "8080": must contain at least one letter (a-z)']),
    ("nodeport-on-clusterip", svc(ports=[{"port": 80, "nodePort": 30080}]),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("nodeport-range", svc(type="NodePort", ports=[{"port": 80, "nodePort": 70000}]),
     ["spec.ports[0].nodePort: Invalid value: 70000: must be between 0 and 65535, inclusive"]),
    ("duplicate-nodeport", svc(type="NodePort", ports=[
        {"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81,
                                                       "nodePort": 30080}]),
     ["spec.ports[1].nodePort: Duplicate value: 30080"]),
    ("duplicate-port", svc(ports=[{"name": "a", "port": 80}, {"name": "b", "port": 80}]),
     ['spec.ports[1]: Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", '
      'AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, '
      'StrVal:""}, NodePort:0}']),
    ("same-port-other-protocol", svc(ports=[{"name": "a", "port": 53},
                                            {"name": "b", "port": 53, "protocol": "UDP"}]), []),
    ("clusterip-invalid", svc(clusterIP="10.96.0.300"),
     [f'spec.clusterIPs[0]: Invalid value: "10.96.0.300": {IP_MSG}']),
    ("clusterips-mismatch", svc(clusterIP="10.96.0.1", clusterIPs=["10.96.0.2"]),
     ['spec.clusterIPs: Invalid value: []string{"10.96.0.2"}: first value must match '
      '`clusterIP`']),
    ("clusterips-same-family", svc(clusterIPs=["10.96.0.1", "10.96.0.2"]),
     ['spec.clusterIPs: Invalid value: []string{"10.96.0.1", "10.96.0.2"}: may specify no '
      'more than one IP for each IP family']),
    ("headless-nodeport", svc(type="NodePort", clusterIP="None"),
     ['spec.clusterIPs[0]: Invalid value: "None": may not be set to \'None\' for NodePort '
      'services']),
    ("externalname-required", svc(type="ExternalName", ports=None),
     ["spec.externalName: Required value"]),
    ("externalname-invalid", svc(type="ExternalName", externalName="Bad_Name"),
     ['spec.externalName: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must '
      "consist of lower case alphanumeric characters, '-' or '.', and must start and end with "
      "an alphanumeric character (e.g. 'example.com', regex used for validation is "
      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    ("externalname-with-clusterip", svc(type="ExternalName", externalName="a.b",
                                        clusterIP="10.96.0.5"),
     ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]),
    ("type", svc(type="Internal"),
     ['spec.type: Unsupported value: "Internal": supported values: "ClusterIP", '
      '"ExternalName", "LoadBalancer", "NodePort"']),
    ("affinity", svc(sessionAffinity="Sticky"),
     ['spec.sessionAffinity: Unsupported value: "Sticky": supported values: "ClientIP", '
      '"None"']),
    ("affinity-timeout", svc(sessionAffinity="ClientIP",
                             sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86401}}),
     ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 86401: must be "
      "greater than 0 and less than 86400"]),
    ("affinity-timeout-max-ok", svc(sessionAffinity="ClientIP",
                                    sessionAffinityConfig={"clientIP": {"timeoutSeconds": 86400}}),
     []),
    ("selector", svc(selector={"app": "we b"}),
     ['spec.selector: Invalid value: "we b": a valid label must be an empty string or consist '
      "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ("etp-on-clusterip", svc(externalTrafficPolicy="Local"),
     ['spec.externalTrafficPolicy: Invalid value: "Local": may only be set for '
      'externally-accessible services']),
    ("etp-enum", svc(type="NodePort", externalTrafficPolicy="Global"),
     ['spec.externalTrafficPolicy: Unsupported value: "Global": supported values: "Cluster", '
      '"Local"']),
    ("itp-enum", svc(internalTrafficPolicy="Node"),
     ['spec.internalTrafficPolicy: Unsupported value: "Node": supported values: "Cluster", '
      '"Local"']),
    ("external-ip-loopback", svc(externalIPs=["127.0.0.1"]),
     ['spec.externalIPs[0]: Invalid value: "127.0.0.1": may not be in the loopback range '
      '(127.0.0.0/8, ::1/128)']),
    ("allocate-nodeports-on-clusterip", svc(allocateLoadBalancerNodePorts=False),
     ["spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is "
      "'LoadBalancer'"]),
]


@pytest.mark.parametrize("obj,want", [c[1:] for c in CREATE_CASES],
                         ids=[c[0] for c in CREATE_CASES])
def test_service_create(obj: dict[str, Any], want: list[str]) -> None:
    assert texts(validate_create("Service", obj)) == want


def test_service_name_is_dns1035() -> None:
    obj = svc()
    obj["metadata"]["name"] = "9web"
    assert texts(validate_create("Service", obj))[0].startswith(
        'metadata.name: Invalid value: "9web": a DNS-1035 label must consist')


UPDATE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], list[str]]] = [
    ("same-ip", svc(clusterIP="10.96.0.10"), svc(clusterIP="10.96.0.10"), []),
    ("ip-omitted-is-kept", svc(clusterIP="10.96.0.10"), svc(), []),
    ("ip-changed", svc(clusterIP="10.96.0.10"), svc(clusterIP="10.96.0.11"),
     ['spec.clusterIPs[0]: Invalid value: []string{"10.96.0.11"}: may not change once set']),
    ("to-externalname", svc(clusterIP="10.96.0.10"),
     svc(type="ExternalName", externalName="a.example.com", ports=None), []),
    ("from-externalname", svc(type="ExternalName", externalName="a.example.com", ports=None),
     svc(clusterIP="10.96.0.12"), []),
    ("to-headless", svc(clusterIP="10.96.0.10"), svc(clusterIP="None"),
     ['spec.clusterIPs[0]: Invalid value: []string{"None"}: may not change once set']),
    ("ports-may-change", svc(clusterIP="10.96.0.10"),
     svc(clusterIP="10.96.0.10", ports=[{"port": 8080}]), []),
    ("type-may-change", svc(clusterIP="10.96.0.10"),
     svc(clusterIP="10.96.0.10", type="NodePort"), []),
]


@pytest.mark.parametrize("old,new,want", [c[1:] for c in UPDATE_CASES],
                         ids=[c[0] for c in UPDATE_CASES])
def test_service_update(old: dict[str, Any], new: dict[str, Any], want: list[str]) -> None:
    assert texts(validate_update("Service", new, old)) == want


def test_service_status_update() -> None:
    old = svc(type="LoadBalancer")
    new = copy.deepcopy(old)
    new["status"] = {"loadBalancer": {"ingress": [{"ip": "172.18.255.1", "ipMode": "VIP"}]}}
    assert texts(validate_status_update("Service", new, old)) == []
    new["status"]["loadBalancer"]["ingress"][0]["ip"] = "nope"
    assert texts(validate_status_update("Service", new, old)) == [
        f'status.loadBalancer.ingress[0].ip: Invalid value: "nope": {IP_MSG}']


SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric "
                 "character (e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")


def endpoints(**subset: Any) -> dict[str, Any]:
    obj = {"metadata": {"name": "web", "namespace": "default"}, "subsets": [subset]}
    apply_defaults("Endpoints", obj)
    return obj


EP_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("ok", endpoints(addresses=[{"ip": "10.244.1.5"}], ports=[{"port": 80}]), []),
    ("no-addresses", endpoints(ports=[{"port": 80}]),
     ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]),
    ("bad-ip", endpoints(addresses=[{"ip": "10.244.1"}]),
     [f'subsets[0].addresses[0].ip: Invalid value: "10.244.1": {IP_MSG}',
      'subsets[0].addresses[0].ip: Invalid value: "10.244.1": must be a valid IP address']),
    ("loopback", endpoints(addresses=[{"ip": "127.0.0.1"}]),
     ['subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback '
      'range (127.0.0.0/8, ::1/128)']),
    ("link-local", endpoints(notReadyAddresses=[{"ip": "169.254.1.1"}]),
     ['subsets[0].notReadyAddresses[0].ip: Invalid value: "169.254.1.1": may not be in the '
      'link-local range (169.254.0.0/16, fe80::/10)']),
    ("hostname", endpoints(addresses=[{"ip": "10.244.1.5", "hostname": "Web"}]),
     ['subsets[0].addresses[0].hostname: Invalid value: "Web": a lowercase RFC 1123 label '
      "must consist of lower case alphanumeric characters or '-', and must start and end with "
      "an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
      "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
    ("port-names", endpoints(addresses=[{"ip": "10.244.1.5"}], ports=[{"port": 80},
                                                                      {"port": 81}]),
     ["subsets[0].ports[0].name: Required value", "subsets[0].ports[1].name: Required value"]),
    ("port-range", endpoints(addresses=[{"ip": "10.244.1.5"}], ports=[{"port": 0}]),
     ["subsets[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    # Valid addresses are remembered (the same ones are re-validated on every change):
    # a known-good ip next to a bad nodeName, a non-string nodeName or ip still fail.
    ("known-ip-bad-node", endpoints(
        addresses=[{"ip": "10.244.1.5", "nodeName": "n1"},
                   {"ip": "10.244.1.5", "nodeName": "Node_1"}],
        notReadyAddresses=[{"ip": "10.244.1.6"}, {"ip": "10.244.1.6", "nodeName": 5},
                           {"ip": 7}]),
     [f'subsets[0].addresses[1].nodeName: Invalid value: "Node_1": {SUBDOMAIN_MSG}',
      f"subsets[0].notReadyAddresses[1].nodeName: Invalid value: 5: {SUBDOMAIN_MSG}",
      f'subsets[0].notReadyAddresses[2].ip: Invalid value: "": {IP_MSG}',
      'subsets[0].notReadyAddresses[2].ip: Invalid value: "": must be a valid IP address']),
]


@pytest.mark.parametrize("obj,want", [c[1:] for c in EP_CASES], ids=[c[0] for c in EP_CASES])
def test_endpoints(obj: dict[str, Any], want: list[str]) -> None:
    assert texts(validate_create("Endpoints", obj)) == want


def endpoint_slice(address_type: str = "IPv4", addresses: list[str] | None = None,
                   **extra: Any) -> dict[str, Any]:
    obj = {"metadata": {"name": "web-x", "namespace": "default"}, "addressType": address_type,
           "endpoints": [{"addresses": addresses or ["10.244.1.5"]}], **extra}
    apply_defaults("EndpointSlice", obj)
    return obj


SLICE_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("ipv6", endpoint_slice("IPv6", ["fd00::5"]), []),
    ("fqdn", endpoint_slice("FQDN", ["db.example.com"]), []),
    ("address-type", endpoint_slice("IPv5"),
     ['addressType: Unsupported value: "IPv5": supported values: "FQDN", "IPv4", "IPv6"']),
    ("wrong-family", endpoint_slice("IPv4", ["fd00::5"]),
     ['endpoints[0].addresses[0]: Invalid value: "fd00::5": must be a valid IPv4 address']),
    ("no-addresses", {"metadata": {"name": "web-x", "namespace": "default"},
                      "addressType": "IPv4", "endpoints": [{"addresses": []}]},
     ["endpoints[0].addresses: Required value: must contain at least 1 address"]),
    ("port-protocol", endpoint_slice(ports=[{"port": 80, "protocol": "HTTP"}]),
     ['ports[0].protocol: Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"']),
    ("port-name-duplicate", endpoint_slice(ports=[{"port": 80}, {"port": 81}]),
     ['ports[1].name: Duplicate value: ""']),
]


@pytest.mark.parametrize("obj,want", [c[1:] for c in SLICE_CASES],
                         ids=[c[0] for c in SLICE_CASES])
def test_endpoint_slice(obj: dict[str, Any], want: list[str]) -> None:
    assert texts(validate_create("EndpointSlice", obj)) == want


def test_endpoint_slice_address_type_immutable() -> None:
    old = valid("EndpointSlice")
    new = copy.deepcopy(old)
    new["addressType"] = "FQDN"
    new["endpoints"][0]["addresses"] = ["a.example.com"]
    assert texts(validate_update("EndpointSlice", new, old)) == [
        'addressType: Invalid value: "FQDN": field is immutable']
