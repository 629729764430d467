from __future__ import annotations

import pytest

from netd.api import errors
from netd.apiserver.routes import parse_resource_path


@pytest.mark.parametrize("path,plural,ns,name,sub", [
    ("/api/v1/pods", "pods", None, None, None),
    ("/api/v1/namespaces/default/pods", "pods", "default", None, None),
    ("/api/v1/namespaces/default/pods/web-0", "pods", "default", "web-0", None),
    ("/api/v1/namespaces/default/pods/web-0/status", "pods", "default", "web-0", "status"),
    ("/api/v1/namespaces", "namespaces", None, None, None),
    ("/api/v1/namespaces/kube-system", "namespaces", None, "kube-system", None),
    ("/api/v1/namespaces/foo/status", "namespaces", None, "foo", "status"),
    ("/api/v1/namespaces/foo/finalize", "namespaces", None, "foo", "finalize"),
    ("/api/v1/nodes/node-1", "nodes", None, "node-1", None),
    ("/apis/apps/v1/namespaces/default/deployments/web/scale", "deployments", "default", "web",
     "scale"),
    ("/apis/apps/v1/statefulsets", "statefulsets", None, None, None),
    ("/apis/discovery.k8s.io/v1/namespaces/x/endpointslices", "endpointslices", "x", None, None),
], ids=lambda v: str(v))
def test_resource_paths(path: str, plural: str, ns: str | None, name: str | None,
                        sub: str | None) -> None:
    t = parse_resource_path(path)
    assert t is not None
    assert (t.rt.plural, t.namespace, t.name, t.subresource) == (plural, ns, name, sub)


@pytest.mark.parametrize("path", ["/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1"])
def test_discovery_paths_are_not_resources(path: str) -> None:
    assert parse_resource_path(path) is None


@pytest.mark.parametrize("path", [
    "/api/v2/pods", "/api/v1/widgets", "/apis/apps/v1/pods", "/api/v1/namespaces/x/nodes",
    "/api/v1/pods/foo", "/api/v1/namespaces/d/pods/p/bogus", "/apis/apps/v1/deployments/x/y/z",
    "/other",
], ids=lambda v: v)
def test_unknown_paths_are_not_found(path: str) -> None:
    with pytest.raises(errors.NotFound):
        parse_resource_path(path)
