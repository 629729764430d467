"""netd.cli.commands_kinds: kubectl's resource-argument grammar."""
from __future__ import annotations

import pytest

from netd.cli.commands_kinds import (
    UsageError, category, collection_path, object_path, parse_args, resolve,
)


@pytest.mark.parametrize("word,group,plural", [
    ("pods", "", "pods"), ("pod", "", "pods"), ("po", "", "pods"), ("Pod", "", "pods"),
    ("PODS", "", "pods"), ("svc", "", "services"), ("ep", "", "endpoints"),
    ("endpoints", "", "endpoints"), ("ns", "", "namespaces"), ("no", "", "nodes"),
    ("deploy", "apps", "deployments"), ("deployments.apps", "apps", "deployments"),
    ("deployment.apps", "apps", "deployments"), ("deployments.v1.apps", "apps", "deployments"),
    ("sts", "apps", "statefulsets"), ("rs", "apps", "replicasets"),
    ("endpointslices.discovery.k8s.io", "discovery.k8s.io", "endpointslices"),
    ("endpointslice", "discovery.k8s.io", "endpointslices"), ("pods.v1", "", "pods"),
    ("leases", "coordination.k8s.io", "leases"), ("ev", "", "events"),
], ids=lambda v: str(v))
def test_resolve(word: str, group: str, plural: str) -> None:
    rt = resolve(word)
    assert (rt.group, rt.plural) == (group, plural)


@pytest.mark.parametrize("word", ["foo", "pods.apps", "deployments.v2.apps", "deployments.v1"],
                         ids=["unknown", "wrong-group", "wrong-version", "core-version"])
def test_resolve_unknown(word: str) -> None:
    with pytest.raises(UsageError) as exc:
        resolve(word)
    assert str(exc.value) == f'the server doesn\'t have a resource type "{word}"'


def test_category_all_in_discovery_order() -> None:
    assert [rt.plural for rt in category("all")] == [
        "pods", "replicationcontrollers", "services",
        "daemonsets", "deployments", "replicasets", "statefulsets"]


def _shape(args: list[str]) -> list[tuple[str, list[str]]]:
    return [(s.rt.plural, s.names) for s in parse_args(args)]


@pytest.mark.parametrize("args,expected", [
    (["pods"], [("pods", [])]),
    (["pods", "a", "b"], [("pods", ["a", "b"])]),
    (["pods,svc"], [("pods", []), ("services", [])]),
    (["po,pods"], [("pods", [])]),
    (["deploy/web"], [("deployments", ["web"])]),
    (["pod/a", "svc/b", "po/c"], [("pods", ["a", "c"]), ("services", ["b"])]),
    (["all"], [("pods", []), ("replicationcontrollers", []), ("services", []),
               ("daemonsets", []), ("deployments", []), ("replicasets", []),
               ("statefulsets", [])]),
    (["all,nodes"], [("pods", []), ("replicationcontrollers", []), ("services", []),
                     ("daemonsets", []), ("deployments", []), ("replicasets", []),
                     ("statefulsets", []), ("nodes", [])]),
], ids=["type", "names", "comma", "dedup", "slash", "slash-many", "all", "all-plus"])
def test_parse_args(args: list[str], expected: list[tuple[str, list[str]]]) -> None:
    assert _shape(args) == expected


@pytest.mark.parametrize("args,fragment", [
    ([], "You must specify the type of resource"),
    (["pod/a", "b"], "no need to specify a resource type as a separate argument"),
    (["pods", "pod/a"], "no need to specify a resource type as a separate argument"),
    (["pod/"], "must have a single resource and name"),
    (["pods,svc", "x"], "only one resource type"),
    (["bogus"], 'doesn\'t have a resource type "bogus"'),
], ids=["empty", "slash-then-name", "type-then-slash", "slash-no-name", "names-multi",
        "unknown"])
def test_parse_args_errors(args: list[str], fragment: str) -> None:
    with pytest.raises(UsageError) as exc:
        parse_args(args)
    assert fragment in str(exc.value)


@pytest.mark.parametrize("word,ns,name,sub,expected", [
    ("pods", "default", "", "", "/api/v1/namespaces/default/pods"),
    ("pods", None, "", "", "/api/v1/pods"),
    ("nodes", "default", "", "", "/api/v1/nodes"),
    ("deploy", "prod", "web", "", "/apis/apps/v1/namespaces/prod/deployments/web"),
    ("deploy", "prod", "web", "scale", "/apis/apps/v1/namespaces/prod/deployments/web/scale"),
    ("nodes", "ignored", "node-1", "", "/api/v1/nodes/node-1"),
    ("cm", "default", "a/b", "", "/api/v1/namespaces/default/configmaps/a%2Fb"),
], ids=["collection", "all-namespaces", "cluster-scoped", "object", "subresource",
        "cluster-object", "quoted"])
def test_paths(word: str, ns: str | None, name: str, sub: str, expected: str) -> None:
    rt = resolve(word)
    path = object_path(rt, ns or "", name, sub) if name else collection_path(rt, ns)
    assert path == expected
