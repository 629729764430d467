"""OpenAPI v2/v3 documents: what kubectl 1.32's explain, apply and --validate look for."""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

import pytest

from netd.api import schema as S
from netd.api.kinds import REGISTRY, ResourceType
from netd.apiserver import openapi as O
from netd.apiserver.openapi_proto import encode_document


def _gv_path(rt: ResourceType) -> str:
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def _v3(path: str) -> dict[str, Any]:
    body = O.openapi_v3_group_version(path)
    assert body is not None
    return json.loads(body)


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


KINDS = [pytest.param(rt, id=f"{rt.group or 'core'}/{rt.kind}") for rt in REGISTRY.types]


def test_index_lists_every_group_version_with_its_hash() -> None:
    index = O.openapi_v3_index()
    expected = {f"apis/{g}/{v}" if g else f"api/{v}" for g, v in REGISTRY.groups()}
    assert set(index["paths"]) == expected
    for path, entry in index["paths"].items():
        body = O.openapi_v3_group_version(path)
        assert body is not None
        digest = hashlib.sha512(body).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"
        assert O.openapi_v3_hash(path) == digest


@pytest.mark.parametrize("path", ["apis/batch/v1", "api/v2", "", "apis/apps"],
                         ids=["batch", "api-v2", "empty", "group-only"])
def test_unknown_group_versions(path: str) -> None:
    assert O.openapi_v3_group_version(path) is None


def _query_param_supported(doc: dict[str, Any], gvk: dict[str, str], name: str) -> bool:
    """client-go's QueryParamVerifierV3: first PATCH op for the GVK, operation-level param."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if op is None or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p["name"] == name and p["in"] == "query" for p in op.get("parameters", []))
    raise AssertionError(f"no PATCH operation for {gvk}")


@pytest.mark.parametrize("rt", KINDS)
def test_v3_supports_field_validation_for_every_kind(rt: ResourceType) -> None:
    doc = _v3(_gv_path(rt))
    assert _query_param_supported(doc, _gvk(rt), "fieldValidation")
    # Every PATCH for that GVK (status too): Go map order picks any of them.
    for item in doc["paths"].values():
        op = item.get("patch")
        if op and op["x-kubernetes-group-version-kind"] == _gvk(rt):
            names = {p["name"] for p in op["parameters"]}
            assert {"fieldValidation", "dryRun", "fieldManager", "force"} <= names
            assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]


@pytest.mark.parametrize("rt", KINDS)
def test_v3_explain_finds_kind_by_path_and_schema(rt: ResourceType) -> None:
    doc = _v3(_gv_path(rt))
    prefix = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    coll = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced \
        else f"{prefix}/{rt.plural}"
    assert doc["paths"][coll]["get"]["x-kubernetes-group-version-kind"] == _gvk(rt)
    assert doc["paths"][coll + "/{name}"]["put"]["x-kubernetes-action"] == "put"
    schemas = [s for s in doc["components"]["schemas"].values()
               if _gvk(rt) in s.get("x-kubernetes-group-version-kind", [])]
    assert len(schemas) == 1
    assert {"apiVersion", "kind", "metadata"} <= set(schemas[0]["properties"])


@pytest.mark.parametrize("rt", KINDS)
def test_v2_has_every_kind(rt: ResourceType) -> None:
    doc = O.openapi_v2_document()
    name = S.get_schema().definition_name(rt.kind, rt.api_version)
    d = doc["definitions"][name]
    assert {"group": rt.group, "kind": rt.kind, "version": rt.version} in \
        d["x-kubernetes-group-version-kind"]
    assert _query_param_supported(doc, _gvk(rt), "fieldValidation")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_every_reference_resolves() -> None:
    v2 = O.openapi_v2_document()
    for ref in _refs(v2):
        assert ref.startswith("#/definitions/") and ref[14:] in v2["definitions"], ref
    for path in O.openapi_v3_index()["paths"]:
        doc = _v3(path)
        for ref in _refs(doc):
            assert ref.startswith("#/components/schemas/"), ref
            assert ref[21:] in doc["components"]["schemas"], (path, ref)


@pytest.mark.parametrize("path,schema,prop,key,strategy", [
    ("api/v1", "io.k8s.api.core.v1.PodSpec", "containers", "name", "merge"),
    ("api/v1", "io.k8s.api.core.v1.PodSpec", "volumes", "name", "merge,retainKeys"),
    ("api/v1", "io.k8s.api.core.v1.Container", "ports", "containerPort", "merge"),
    ("api/v1", "io.k8s.api.core.v1.Container", "env", "name", "merge"),
    ("api/v1", "io.k8s.api.core.v1.ServiceSpec", "ports", "port", "merge"),
    ("api/v1", S.META + ".ObjectMeta", "ownerReferences", "uid", "merge"),
    ("apis/apps/v1", "io.k8s.api.core.v1.Container", "volumeMounts", "mountPath", "merge"),
    ("apis/apps/v1", "io.k8s.api.apps.v1.DeploymentStatus", "conditions", "type", "merge"),
], ids=["containers", "volumes", "container-ports", "env", "service-ports", "ownerrefs",
        "apps-volumemounts", "deploy-conditions"])
def test_merge_keys_in_documents(path: str, schema: str, prop: str, key: str,
                                 strategy: str) -> None:
    for doc, defs in ((_v3(path), "v3"), (O.openapi_v2_document(), "v2")):
        table = doc["components"]["schemas"] if defs == "v3" else doc["definitions"]
        p = table[schema]["properties"][prop]
        assert p["x-kubernetes-patch-merge-key"] == key
        assert p["x-kubernetes-patch-strategy"] == strategy


def test_v3_special_types_render_like_kube_openapi() -> None:
    schemas = _v3("api/v1")["components"]["schemas"]
    ios = schemas[S.INT_OR_STRING]
    assert "type" not in ios and ios["format"] == "int-or-string"
    assert ios["x-kubernetes-int-or-string"] is True
    assert "type" not in schemas[S.QUANTITY]
    assert schemas[S.TIME] == {"type": "string", "format": "date-time",
                               "description": schemas[S.TIME]["description"]}
    target = schemas["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert target["allOf"] == [{"$ref": "#/components/schemas/" + S.INT_OR_STRING}]
    limits = schemas["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"]["allOf"][0]["$ref"].endswith("Quantity")
    assert "required" in schemas["io.k8s.api.core.v1.Container"]


def test_subresource_operations() -> None:
    core, apps = _v3("api/v1")["paths"], _v3("apis/apps/v1")["paths"]
    pod = "/api/v1/namespaces/{namespace}/pods/{name}"
    assert core[pod + "/status"]["patch"]["x-kubernetes-group-version-kind"]["kind"] == "Pod"
    assert core[pod + "/exec"]["get"]["x-kubernetes-action"] == "connect"
    assert core[pod + "/exec"]["post"]["x-kubernetes-group-version-kind"]["kind"] == \
        "PodExecOptions"
    assert {p["name"] for p in core[pod + "/log"]["get"]["parameters"]} >= {
        "container", "follow", "tailLines", "previous"}
    assert core[pod + "/eviction"]["post"]["x-kubernetes-group-version-kind"] == {
        "group": "policy", "kind": "Eviction", "version": "v1"}
    scale = apps["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
    assert scale["put"]["x-kubernetes-group-version-kind"] == {
        "group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "/api/v1/pods" in core and "/api/v1/watch/namespaces/{namespace}/pods" in core
    assert "/api/v1/nodes/{name}" in core and "/api/v1/namespaces/{namespace}/nodes" not in core


def test_v2_json_bytes_match_document() -> None:
    assert json.loads(O.openapi_v2_json()) == O.openapi_v2_document()


# -- protobuf ------------------------------------------------------------------------------

def _decode(buf: bytes) -> list[tuple[int, Any]]:
    """A minimal protobuf reader: [(field, int | bytes)]."""
    out: list[tuple[int, Any]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            val, i = _varint(buf, i)
            out.append((field, val))
        elif wire == 2:
            n, i = _varint(buf, i)
            out.append((field, buf[i:i + n]))
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = val = 0
    while True:
        b = buf[i]
        i += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, i


def _fields(buf: bytes, n: int) -> list[Any]:
    return [v for f, v in _decode(buf) if f == n]


def test_protobuf_document_structure() -> None:
    body = O.openapi_v2_protobuf()
    assert body is not None
    doc = O.openapi_v2_document()
    assert _fields(body, 1) == [b"2.0"]
    named_schemas = _fields(_fields(body, 9)[0], 1)
    names = {_fields(ns, 1)[0].decode() for ns in named_schemas}
    assert names == set(doc["definitions"])
    # The Pod definition's GVK extension survives as YAML (JSON) text.
    pod = next(ns for ns in named_schemas if _fields(ns, 1)[0] == b"io.k8s.api.core.v1.Pod")
    ext = [_decode(e) for e in _fields(_fields(pod, 2)[0], 31)]
    gvk = {dict(e)[1].decode(): json.loads(_fields(dict(e)[2], 2)[0]) for e in ext}
    assert gvk["x-kubernetes-group-version-kind"] == [
        {"group": "", "kind": "Pod", "version": "v1"}]
    paths = _fields(_fields(body, 8)[0], 2)
    assert len(paths) == len(doc["paths"])


def test_protobuf_query_parameter_encoding() -> None:
    doc = {"swagger": "2.0", "paths": {"/x": {"patch": {
        "operationId": "patchX", "parameters": [
            {"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": True},
            {"name": "body", "in": "body", "required": True, "schema": {"type": "object"}}],
        "responses": {"200": {"description": "OK"}}}}}}
    body = encode_document(doc)
    path_item = _fields(_fields(_fields(body, 8)[0], 2)[0], 2)[0]
    op = _fields(path_item, 8)[0]
    assert _fields(op, 5) == [b"patchX"]
    query_item, body_item = _fields(op, 8)
    query = _fields(_fields(_fields(_fields(query_item, 1)[0], 2)[0], 3)[0], 4)
    assert query == [b"fieldValidation"]
    body_param = _fields(_fields(body_item, 1)[0], 1)[0]
    assert _fields(body_param, 2) == [b"body"] and _fields(body_param, 4) == [1]
