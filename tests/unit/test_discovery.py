"""Discovery documents, checked against kube-apiserver 1.32's shapes and client-go's reader."""
from __future__ import annotations

from typing import Any

import pytest

from netd.api.kinds import REGISTRY
from netd.apiserver import discovery as D


def _by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in doc["resources"]}


def test_legacy_api_versions() -> None:
    doc = D.legacy_api_versions("10.0.0.1:6443")
    assert doc == {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}]}


def test_legacy_group_list_names_every_named_group_once() -> None:
    doc = D.legacy_api_group_list()
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    names = [g["name"] for g in doc["groups"]]
    assert names == ["apps", "discovery.k8s.io", "storage.k8s.io", "coordination.k8s.io"]
    apps = doc["groups"][0]
    assert apps["versions"] == [{"groupVersion": "apps/v1", "version": "v1"}]
    assert apps["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}


def test_api_group() -> None:
    g = D.api_group("apps")
    assert g is not None and g["kind"] == "APIGroup" and g["name"] == "apps"
    assert D.api_group("batch") is None


RESOURCE_CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("", "v1", "pods", {"singularName": "pod", "namespaced": True, "kind": "Pod",
                        "shortNames": ["po"], "categories": ["all"],
                        "storageVersionHash": "xPOwRZ+Yhw8=",
                        "verbs": ["create", "delete", "deletecollection", "get", "list",
                                  "patch", "update", "watch"]}),
    ("", "v1", "services", {"shortNames": ["svc"], "categories": ["all"],
                            "storageVersionHash": "0/CO1lhkEBI="}),
    ("", "v1", "namespaces", {"namespaced": False, "shortNames": ["ns"],
                              "storageVersionHash": "Q3oi5N2YM8M="}),
    ("", "v1", "endpoints", {"singularName": "endpoints", "shortNames": ["ep"]}),
    ("", "v1", "configmaps", {"storageVersionHash": "qFsyl6wFWjQ="}),
    ("", "v1", "pods/status", {"singularName": "", "kind": "Pod",
                               "verbs": ["get", "patch", "update"]}),
    ("", "v1", "pods/log", {"kind": "Pod", "verbs": ["get"]}),
    ("", "v1", "pods/exec", {"kind": "PodExecOptions", "verbs": ["create", "get"]}),
    ("", "v1", "pods/attach", {"kind": "PodAttachOptions", "verbs": ["create", "get"]}),
    ("", "v1", "pods/portforward", {"kind": "PodPortForwardOptions"}),
    ("", "v1", "pods/binding", {"kind": "Binding", "verbs": ["create"]}),
    ("", "v1", "pods/eviction", {"group": "policy", "version": "v1", "kind": "Eviction",
                                 "verbs": ["create"]}),
    ("", "v1", "replicationcontrollers/scale", {"group": "autoscaling", "version": "v1",
                                                "kind": "Scale"}),
    ("apps", "v1", "deployments", {"shortNames": ["deploy"], "categories": ["all"],
                                   "storageVersionHash": "8aSe+NMegvE="}),
    ("apps", "v1", "deployments/scale", {"group": "autoscaling", "version": "v1",
                                         "kind": "Scale",
                                         "verbs": ["get", "patch", "update"]}),
    ("apps", "v1", "statefulsets", {"shortNames": ["sts"], "categories": ["all"]}),
    ("apps", "v1", "daemonsets", {"shortNames": ["ds"], "categories": ["all"]}),
    ("apps", "v1", "replicasets", {"shortNames": ["rs"], "categories": ["all"]}),
    ("storage.k8s.io", "v1", "storageclasses", {"namespaced": False, "shortNames": ["sc"]}),
]


@pytest.mark.parametrize("group,version,name,expected", RESOURCE_CASES,
                         ids=[c[2] for c in RESOURCE_CASES])
def test_resource_entries(group: str, version: str, name: str,
                          expected: dict[str, Any]) -> None:
    doc = D.api_resource_list(group, version)
    assert doc is not None
    entry = _by_name(doc)[name]
    for k, v in expected.items():
        assert entry[k] == v, k
    if "/" in name and "group" not in expected:
        assert "group" not in entry and "version" not in entry


def test_resource_list_envelope_quirks() -> None:
    core = D.api_resource_list("", "v1")
    apps = D.api_resource_list("apps", "v1")
    assert core is not None and apps is not None
    assert "apiVersion" not in core and core["groupVersion"] == "v1"
    assert apps["apiVersion"] == "v1" and apps["groupVersion"] == "apps/v1"
    names = [r["name"] for r in core["resources"]]
    assert names == sorted(names)
    assert "pods/attach" in names and names.index("pods") < names.index("pods/attach")
    assert D.api_resource_list("batch", "v1") is None
    assert D.api_resource_list("apps", "v2") is None


def test_all_category_is_exactly_the_kube_set() -> None:
    in_all = set()
    for group, version in REGISTRY.groups():
        doc = D.api_resource_list(group, version)
        assert doc is not None
        in_all |= {r["name"] for r in doc["resources"] if "all" in r.get("categories", [])}
    assert in_all == {"pods", "services", "replicationcontrollers", "deployments",
                      "replicasets", "statefulsets", "daemonsets"}


@pytest.mark.parametrize("accept,expected", [
    ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
     "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
     "application/json", "v2"),
    ("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList", "v2beta1"),
    ("application/json, */*", None),
    ("", None),
    (None, None),
    ("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList", None),
], ids=["kubectl-1.32", "v2beta1-only", "plain-json", "empty", "missing", "unknown-version"])
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert D.negotiate(accept) == expected


def _client_go_convert(doc: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """What client-go's aggregated reader turns the document into: gv -> name -> resource."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for item in doc["items"]:
        group = item["metadata"].get("name", "")
        for v in item["versions"]:
            assert v["freshness"] == "Current"
            gv = f"{group}/{v['version']}" if group else v["version"]
            res = out.setdefault(gv, {})
            for r in v["resources"]:
                rk = r["responseKind"]
                assert rk["kind"], "missing GVK makes client-go drop the resource"
                parent = {"name": r["resource"], "singularName": r["singularResource"],
                          "namespaced": r["scope"] == "Namespaced", "kind": rk["kind"],
                          "verbs": r["verbs"]}
                res[r["resource"]] = parent
                for s in r.get("subresources", []):
                    res[f"{r['resource']}/{s['subresource']}"] = {
                        "kind": s["responseKind"]["kind"],
                        "group": s["responseKind"]["group"], "verbs": s["verbs"]}
    return out


def test_aggregated_matches_legacy() -> None:
    core = D.aggregated_discovery(True)
    named = D.aggregated_discovery(False)
    for doc in (core, named):
        assert doc["kind"] == "APIGroupDiscoveryList"
        assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    assert len(core["items"]) == 1 and "name" not in core["items"][0]["metadata"]
    converted = {**_client_go_convert(core), **_client_go_convert(named)}
    for group, version in REGISTRY.groups():
        gv = f"{group}/{version}" if group else version
        legacy = D.api_resource_list(group, version)
        assert legacy is not None
        assert set(converted[gv]) == {r["name"] for r in legacy["resources"]}
        for r in legacy["resources"]:
            got = converted[gv][r["name"]]
            assert got["kind"] == r["kind"] and got["verbs"] == r["verbs"]
            if "/" in r["name"]:
                assert got["group"] == r.get("group", "")


def test_aggregated_resource_details() -> None:
    doc = D.aggregated_discovery(False)
    apps = next(i for i in doc["items"] if i["metadata"]["name"] == "apps")
    deploy = next(r for r in apps["versions"][0]["resources"] if r["resource"] == "deployments")
    assert deploy["responseKind"] == {"group": "", "version": "", "kind": "Deployment"}
    assert deploy["scope"] == "Namespaced" and deploy["singularResource"] == "deployment"
    assert deploy["shortNames"] == ["deploy"] and deploy["categories"] == ["all"]
    assert deploy["subresources"] == [
        {"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1",
                                                  "kind": "Scale"},
         "verbs": ["get", "patch", "update"]},
        {"subresource": "status", "responseKind": {"group": "", "version": "", "kind":
                                                   "Deployment"},
         "verbs": ["get", "patch", "update"]}]
    sc = next(i for i in doc["items"] if i["metadata"]["name"] == "storage.k8s.io")
    assert sc["versions"][0]["resources"][0]["scope"] == "Cluster"
    assert D.aggregated_discovery(True, version="v2beta1")["apiVersion"] == \
        "apidiscovery.k8s.io/v2beta1"
    assert D.content_type("v2").endswith("v=v2;as=APIGroupDiscoveryList")


def test_etag_is_stable_and_content_addressed() -> None:
    assert D.etag(b"a") == D.etag(b"a") != D.etag(b"b")
    assert D.etag(b"a").startswith('"') and len(D.etag(b"a")) == 130
