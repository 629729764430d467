"""OpenAPI documents for kubectl: v3 per group-version (explain, apply, --validate) and v2.

What kubectl 1.32 reads from them, and therefore what must be right:
- `kubectl explain` (v3): a path `/api/v1/namespaces/{namespace}/pods` whose operations carry
  `x-kubernetes-group-version-kind`, and a components schema whose GVK list names the kind;
  fields are followed through `properties` / `allOf[$ref]` / `items`.
- client-side `kubectl apply` (v3): a PATCH operation for the GVK whose requestBody offers
  `application/strategic-merge-patch+json`, then `x-kubernetes-patch-merge-key` /
  `x-kubernetes-patch-strategy` on the schema properties.
- `--validate=strict` (v3, falling back to v2): a PATCH operation for the GVK with an
  operation-level query parameter `fieldValidation`; if found kubectl sends
  `?fieldValidation=Strict` and leaves unknown-field checks to the server.
Documents are built once per process from the registry and the schema (both static).
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from netd.api import schema as S
from netd.api.kinds import REGISTRY, ResourceType, Subresource
from netd.apiserver.discovery import subresource_gvk

K8S_VERSION = "v1.32.0"
PATCH = S.META + ".Patch"
JSON = "application/json"
V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
_PRODUCES = [JSON, "application/yaml", "application/vnd.kubernetes.protobuf"]
_WATCH_PRODUCES = _PRODUCES[:1] + ["application/yaml", "application/vnd.kubernetes.protobuf",
                                   "application/json;stream=watch",
                                   "application/vnd.kubernetes.protobuf;stream=watch"]
_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
                "application/strategic-merge-patch+json", "application/apply-patch+yaml"]

# -- schemas -------------------------------------------------------------------------------

_SPECIAL_V2: dict[str, dict[str, Any]] = {
    "int-or-string": {"type": "string", "format": "int-or-string"},
    "quantity": {"type": "string"},
    "time": {"type": "string", "format": "date-time"},
    "micro-time": {"type": "string", "format": "date-time"},
    "raw-extension": {"type": "object"},
    "fields-v1": {"type": "object"},
}
# v3 spells IntOrString / Quantity as unions (no `type`), which is also what makes
# `kubectl explain` print `<IntOrString>` / `<map[string]Quantity>` instead of `<string>`.
_SPECIAL_V3: dict[str, dict[str, Any]] = dict(_SPECIAL_V2, **{
    "int-or-string": {"anyOf": [{"type": "integer"}, {"type": "string"}],
                      "format": "int-or-string", "x-kubernetes-int-or-string": True},
    "quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
})
_PRIMITIVE = {"string": {"type": "string"}, "integer": {"type": "integer", "format": "int64"},
              "number": {"type": "number", "format": "double"},
              "boolean": {"type": "boolean"}, "object": {"type": "object"}}

# Fields whose description the client lost (it drops docs on $ref properties).
_GENERIC_DOCS = {
    "metadata": "Standard object's metadata. More info: https://git.k8s.io/community/"
                "contributors/devel/sig-architecture/api-conventions.md#metadata",
    "spec": "Spec defines the desired behavior of this object. More info: https://git.k8s."
            "io/community/contributors/devel/sig-architecture/api-conventions.md"
            "#spec-and-status",
    "status": "Status is the most recently observed status of this object. Populated by "
              "the system. Read-only. More info: https://git.k8s.io/community/contributors/"
              "devel/sig-architecture/api-conventions.md#spec-and-status",
    "template": "Template describes the pods that will be created.",
    "selector": "Label query over pods that should match the replica count. More info: "
                "https://kubernetes.io/docs/concepts/overview/working-with-objects/"
                "labels/#label-selectors",
}


def _type_schema(expr: str, v3: bool) -> dict[str, Any]:
    if expr.startswith("[]"):
        return {"type": "array", "items": _type_schema(S.element(expr), v3)}
    if expr.startswith("{}"):
        return {"type": "object", "additionalProperties": _type_schema(S.element(expr), v3)}
    if S.is_ref(expr):
        # v3 wraps references in allOf so siblings (description, default) stay legal.
        return {"allOf": [_ref(expr, v3)], "default": {}} if v3 else _ref(expr, v3)
    return dict(_PRIMITIVE[expr])


def _ref(name: str, v3: bool) -> dict[str, Any]:
    return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + name}


def _field_schema(f: S.Field, v3: bool) -> dict[str, Any]:
    out = _type_schema(f.type, v3)
    desc = f.description or _GENERIC_DOCS.get(f.name, "")
    if desc:
        out["description"] = desc
    if f.patch_merge_key:
        out["x-kubernetes-patch-merge-key"] = f.patch_merge_key
    if f.patch_strategy:
        out["x-kubernetes-patch-strategy"] = f.patch_strategy
    if f.list_type:
        out["x-kubernetes-list-type"] = f.list_type
    if f.list_map_keys:
        out["x-kubernetes-list-map-keys"] = list(f.list_map_keys)
    return out


def definition(td: S.TypeDef, v3: bool) -> dict[str, Any]:
    """One OpenAPI definition (v2 `definitions` / v3 `components.schemas` entry)."""
    if td.special:
        out = dict((_SPECIAL_V3 if v3 else _SPECIAL_V2)[td.special])
    else:
        out = {"type": "object"}
        props = {name: _field_schema(f, v3) for name, f in td.fields.items()}
        if props:
            out["properties"] = props
        required = [name for name, f in td.fields.items() if f.required]
        if required:
            out["required"] = required
    if td.description:
        out["description"] = td.description
    if td.gvks:
        out["x-kubernetes-group-version-kind"] = [
            {"group": g, "kind": k, "version": v} for g, v, k in td.gvks]
    return out


# -- paths ---------------------------------------------------------------------------------

def _param(name: str, typ: str, desc: str, where: str = "query") -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": desc}
    if where == "path":
        p["required"] = True
    p["type"] = typ
    if typ == "boolean" or name in ("dryRun", "fieldManager", "fieldValidation"):
        p["uniqueItems"] = True
    return p


_Q = {
    "pretty": ("string", "If 'true', then the output is pretty printed."),
    "dryRun": ("string", "When present, indicates that modifications should not be persisted. "
               "Valid values are: - All: all dry run stages will be processed"),
    "fieldManager": ("string", "fieldManager is a name associated with the actor or entity "
                     "that is making these changes."),
    "fieldValidation": ("string", "fieldValidation instructs the server on how to handle "
                        "objects in the request (POST/PUT/PATCH) containing unknown or "
                        "duplicate fields. Valid values are: - Ignore - Warn - Strict"),
    "force": ("boolean", "Force is going to \"force\" Apply requests."),
    "allowWatchBookmarks": ("boolean", "allowWatchBookmarks requests watch events with type "
                            "\"BOOKMARK\"."),
    "continue": ("string", "The continue option should be set when retrieving more results "
                 "from the server."),
    "fieldSelector": ("string", "A selector to restrict the list of returned objects by "
                      "their fields. Defaults to everything."),
    "labelSelector": ("string", "A selector to restrict the list of returned objects by "
                      "their labels. Defaults to everything."),
    "limit": ("integer", "limit is a maximum number of responses to return for a list call."),
    "resourceVersion": ("string", "resourceVersion sets a constraint on what resource "
                        "versions a request may be served from."),
    "resourceVersionMatch": ("string", "resourceVersionMatch determines how resourceVersion "
                             "is applied to list calls."),
    "sendInitialEvents": ("boolean", "`sendInitialEvents=true` may be set together with "
                          "`watch=true`."),
    "timeoutSeconds": ("integer", "Timeout for the list/watch call."),
    "watch": ("boolean", "Watch for changes to the described resources and return them as a "
              "stream of add, update, and remove notifications."),
    "gracePeriodSeconds": ("integer", "The duration in seconds before the object should be "
                           "deleted."),
    "orphanDependents": ("boolean", "Deprecated: please use the PropagationPolicy."),
    "propagationPolicy": ("string", "Whether and how garbage collection will be performed."),
    "ignoreStoreReadErrorWithClusterBreakingPotential": (
        "boolean", "if set to true, it will trigger an unsafe deletion of the resource."),
    "container": ("string", "The container for which to stream logs / execute commands."),
    "follow": ("boolean", "Follow the log stream of the pod."),
    "limitBytes": ("integer", "If set, the number of bytes to read from the server before "
                   "terminating the log output."),
    "previous": ("boolean", "Return previous terminated container logs."),
    "sinceSeconds": ("integer", "A relative time in seconds before the current time from "
                     "which to show logs."),
    "tailLines": ("integer", "If set, the number of lines from the end of the logs to show."),
    "timestamps": ("boolean", "If true, add an RFC3339 timestamp at the beginning of every "
                   "line of log output."),
    "command": ("string", "Command is the remote command to execute. argv array."),
    "stdin": ("boolean", "Redirect the standard input stream of the pod for this call."),
    "stdout": ("boolean", "Redirect the standard output stream of the pod for this call."),
    "stderr": ("boolean", "Redirect the standard error stream of the pod for this call."),
    "tty": ("boolean", "TTY if true indicates that a tty will be allocated for the call."),
    "ports": ("integer", "List of ports to forward."),
}
_LIST_Q = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
           "resourceVersion", "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds",
           "watch")
_WRITE_Q = ("dryRun", "fieldManager", "fieldValidation")
_DELETE_Q = ("dryRun", "gracePeriodSeconds", "ignoreStoreReadErrorWithClusterBreakingPotential",
             "orphanDependents", "propagationPolicy")
_DELETECOLL_Q = ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds",
                 "ignoreStoreReadErrorWithClusterBreakingPotential", "labelSelector", "limit",
                 "orphanDependents", "propagationPolicy", "resourceVersion",
                 "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds")
_CONNECT_Q = {
    "log": ("container", "follow", "limitBytes", "previous", "sinceSeconds", "tailLines",
            "timestamps"),
    "exec": ("command", "container", "stderr", "stdin", "stdout", "tty"),
    "attach": ("container", "stderr", "stdin", "stdout", "tty"),
    "portforward": ("ports",),
}


def _q(names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [_param(n, *_Q[n]) for n in names]


def _group_token(group: str) -> str:
    return "Core" if not group else group.split(".")[0].capitalize()


def _gvk_ext(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


class _Op:
    """One operation, kept format-neutral until rendered as v2 or v3."""

    def __init__(self, method: str, op_id: str, action: str, gvk: tuple[str, str, str],
                 query: list[dict[str, Any]], tag: str, desc: str, response: str | None,
                 body: str | None = None, consumes: list[str] | None = None,
                 produces: list[str] | None = None, created: bool = False) -> None:
        self.method, self.op_id, self.action, self.gvk = method, op_id, action, gvk
        self.query, self.tag, self.desc, self.response = query, tag, desc, response
        self.body, self.consumes, self.produces = body, consumes, produces or _PRODUCES
        self.created = created

    def _responses(self, v3: bool) -> dict[str, Any]:
        codes = ["200"] + (["201", "202"] if self.created else [])
        if self.method == "put":
            codes = ["200", "201"]
        out: dict[str, Any] = {}
        for code in codes:
            r: dict[str, Any] = {"description": {"200": "OK", "201": "Created",
                                                 "202": "Accepted"}[code]}
            if self.response:
                schema = _ref(self.response, v3) if S.is_ref(self.response) \
                    else dict(_PRIMITIVE[self.response])
                if v3:
                    r["content"] = {ct: {"schema": schema} for ct in self.produces}
                else:
                    r["schema"] = schema
            out[code] = r
        out["401"] = {"description": "Unauthorized"}
        return out

    def render(self, v3: bool) -> dict[str, Any]:
        op: dict[str, Any] = {"tags": [self.tag], "description": self.desc,
                              "operationId": self.op_id}
        params = [self._v3_param(p) if v3 else dict(p) for p in self.query]
        if self.body and not v3:
            params.insert(0, {"name": "body", "in": "body", "required": self.method != "delete",
                              "schema": _ref(self.body, False)})
        if params:
            op["parameters"] = params
        if self.body and v3:
            op["requestBody"] = {
                "content": {ct: {"schema": _ref(self.body, True)}
                            for ct in (self.consumes or ["*/*"])},
                "required": self.method != "delete"}
        if not v3:
            op["consumes"] = self.consumes or ["*/*"]
            op["produces"] = self.produces
            op["schemes"] = ["https"]
        op["responses"] = self._responses(v3)
        op["x-kubernetes-action"] = self.action
        op["x-kubernetes-group-version-kind"] = _gvk_ext(*self.gvk)
        return op

    @staticmethod
    def _v3_param(p: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in p.items() if k not in ("type", "uniqueItems")}
        out["schema"] = {"type": p["type"], **({"uniqueItems": True}
                                              if p.get("uniqueItems") else {})}
        return out


def _paths_for(rt: ResourceType, sch: S.Schema) -> dict[str, tuple[list[dict[str, Any]],
                                                                    list[_Op]]]:
    """{url: (path-level params, operations)} for one resource type, like kube-apiserver."""
    g, v, kind = rt.group, rt.version, rt.kind
    prefix = f"/apis/{g}/{v}" if g else f"/api/{v}"
    tag = f"{g.split('.')[0] if g else 'core'}_{v}"
    tok = _group_token(g) + v.capitalize()
    ns = "Namespaced" if rt.namespaced else ""
    obj = sch.definition_name(kind, rt.api_version) or ""
    lst = sch.definition_name(rt.list_kind, rt.api_version) or ""
    gvk = (g, v, kind)
    delete_opts, status, watch_ev = S.META + ".DeleteOptions", S.META + ".Status", \
        S.META + ".WatchEvent"
    pretty = _param("pretty", *_Q["pretty"])
    ns_param = [_param("namespace", "string", "object name and auth scope, such as for "
                       "teams and projects", "path")] if rt.namespaced else []
    name_param = lambda what: _param("name", "string", f"name of the {what}", "path")  # noqa
    coll = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced \
        else f"{prefix}/{rt.plural}"
    item = coll + "/{name}"
    out: dict[str, tuple[list[dict[str, Any]], list[_Op]]] = {}
    verbs = set(rt.verbs)
    ops: list[_Op] = []
    if "list" in verbs:
        ops.append(_Op("get", f"list{tok}{ns}{kind}", "list", gvk, _q(_LIST_Q), tag,
                       f"list or watch objects of kind {kind}", lst,
                       produces=_WATCH_PRODUCES))
    if "create" in verbs:
        ops.append(_Op("post", f"create{tok}{ns}{kind}", "post", gvk, _q(_WRITE_Q), tag,
                       f"create a {kind}", obj, body=obj, created=True))
    if "deletecollection" in verbs:
        ops.append(_Op("delete", f"delete{tok}Collection{ns}{kind}", "deletecollection", gvk,
                       _q(_DELETECOLL_Q), tag, f"delete collection of {kind}", status,
                       body=delete_opts))
    out[coll] = (ns_param + [pretty], ops)
    ops = [
        _Op("get", f"read{tok}{ns}{kind}", "get", gvk, [], tag,
            f"read the specified {kind}", obj),
        _Op("put", f"replace{tok}{ns}{kind}", "put", gvk, _q(_WRITE_Q), tag,
            f"replace the specified {kind}", obj, body=obj),
        _Op("delete", f"delete{tok}{ns}{kind}", "delete", gvk, _q(_DELETE_Q), tag,
            f"delete a {kind}", obj, body=delete_opts, created=True),
        _Op("patch", f"patch{tok}{ns}{kind}", "patch", gvk, _q(_WRITE_Q + ("force",)), tag,
            f"partially update the specified {kind}", obj, body=PATCH,
            consumes=_PATCH_TYPES, created=True),
    ]
    out[item] = ([name_param(kind)] + ns_param + [pretty], ops)
    if rt.namespaced and "list" in verbs:
        out[f"{prefix}/{rt.plural}"] = ([pretty] + _q(_LIST_Q), [
            _Op("get", f"list{tok}{kind}ForAllNamespaces", "list", gvk, [], tag,
                f"list or watch objects of kind {kind}", lst, produces=_WATCH_PRODUCES)])
    if "watch" in verbs:
        wcoll = coll.replace(prefix, prefix + "/watch", 1)
        out[wcoll] = (ns_param + [pretty] + _q(_LIST_Q), [
            _Op("get", f"watch{tok}{ns}{kind}List", "watchlist", gvk, [], tag,
                f"watch individual changes to a list of {kind}", watch_ev,
                produces=_WATCH_PRODUCES)])
        out[wcoll + "/{name}"] = ([name_param(kind)] + ns_param + [pretty] + _q(_LIST_Q), [
            _Op("get", f"watch{tok}{ns}{kind}", "watch", gvk, [], tag,
                f"watch changes to an object of kind {kind}", watch_ev,
                produces=_WATCH_PRODUCES)])
    for sub in rt.subresources:
        out[f"{item}/{sub.name}"] = _sub_ops(rt, sub, sch, tok, ns, tag,
                                             [name_param(sub.kind or kind)] + ns_param)
    return out


def _sub_ops(rt: ResourceType, sub: Subresource, sch: S.Schema, tok: str, ns: str, tag: str,
             params: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[_Op]]:
    sg, sv, skind = subresource_gvk(rt, sub)
    gvk = (sg or rt.group, sv or rt.version, skind)
    suffix = sub.name.capitalize()
    base = f"{tok}{ns}{rt.kind}{suffix}"
    pretty = _param("pretty", *_Q["pretty"])
    if sub.name in _CONNECT_Q and sub.name != "log":
        ops = [_Op(m, f"connect{m.capitalize()}{base}", "connect", gvk,
                   _q(_CONNECT_Q[sub.name]), tag, f"connect {m.upper()} requests to "
                   f"{sub.name} of {rt.kind}", "string", produces=["*/*"])
               for m in ("get", "post")]
        return params, ops
    if sub.name == "log":
        return params + [pretty], [_Op("get", f"read{base}", "get", gvk,
                                       _q(_CONNECT_Q["log"]), tag,
                                       f"read log of the specified {rt.kind}", "string",
                                       produces=["text/plain", JSON, "application/yaml",
                                                 "application/vnd.kubernetes.protobuf"])]
    body = sch.definition_name(skind, f"{gvk[0]}/{gvk[1]}" if gvk[0] else gvk[1]) or ""
    if "create" in sub.verbs and not {"get", "update"} & set(sub.verbs):
        return params + [pretty], [_Op("post", f"create{base}", "post", gvk, _q(_WRITE_Q),
                                       tag, f"create {sub.name} of a {rt.kind}", body,
                                       body=body, created=True)]
    return params + [pretty], [
        _Op("get", f"read{base}", "get", gvk, [], tag,
            f"read {sub.name} of the specified {rt.kind}", body),
        _Op("put", f"replace{base}", "put", gvk, _q(_WRITE_Q), tag,
            f"replace {sub.name} of the specified {rt.kind}", body, body=body),
        _Op("patch", f"patch{base}", "patch", gvk, _q(_WRITE_Q + ("force",)), tag,
            f"partially update {sub.name} of the specified {rt.kind}", body, body=PATCH,
            consumes=_PATCH_TYPES, created=True),
    ]


def _render_paths(paths: dict[str, tuple[list[dict[str, Any]], list[_Op]]],
                  v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for url, (params, ops) in paths.items():
        item: dict[str, Any] = {op.method: op.render(v3) for op in ops}
        if params:
            item["parameters"] = [_Op._v3_param(p) if v3 else p for p in params]
        out[url] = item
    return out


def _refs_in(doc: Any, found: set[str]) -> None:
    if isinstance(doc, dict):
        ref = doc.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for v in doc.values():
            _refs_in(v, found)
    elif isinstance(doc, list):
        for v in doc:
            _refs_in(v, found)


def _definitions(sch: S.Schema, roots: set[str], v3: bool) -> dict[str, Any]:
    names = sorted(sch.reachable(sorted(roots)))
    defs = {n: definition(sch.type(n), v3) for n in names}
    if PATCH in roots or not roots:
        defs[PATCH] = {"description": "Patch is provided to give a concrete name and type to "
                                      "the Kubernetes PATCH request body.", "type": "object"}
    return dict(sorted(defs.items()))


def _all_paths(group_version: tuple[str, str] | None, sch: S.Schema
               ) -> dict[str, tuple[list[dict[str, Any]], list[_Op]]]:
    paths: dict[str, tuple[list[dict[str, Any]], list[_Op]]] = {}
    for rt in REGISTRY.types:
        if group_version is None or (rt.group, rt.version) == group_version:
            paths.update(_paths_for(rt, sch))
    return dict(sorted(paths.items()))


_INFO = {"title": "Kubernetes", "version": K8S_VERSION}
_SECURITY_V2 = {"BearerToken": {"description": "Bearer Token authentication",
                                "type": "apiKey", "name": "authorization", "in": "header"}}


@lru_cache(maxsize=1)
def openapi_v2_document() -> dict[str, Any]:
    sch = S.get_schema()
    paths = _render_paths(_all_paths(None, sch), v3=False)
    roots: set[str] = set()
    _refs_in(paths, roots)
    return {"swagger": "2.0", "info": _INFO, "paths": paths,
            "definitions": _definitions(sch, roots, v3=False),
            "securityDefinitions": _SECURITY_V2, "security": [{"BearerToken": []}]}


@lru_cache(maxsize=1)
def openapi_v2_json() -> bytes:
    return json.dumps(openapi_v2_document(), separators=(",", ":")).encode()


@lru_cache(maxsize=1)
def openapi_v2_protobuf() -> bytes | None:
    """The v2 document as gnostic protobuf, the only v2 encoding client-go accepts."""
    from netd.apiserver.openapi_proto import encode_document
    return encode_document(openapi_v2_document())


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


@lru_cache(maxsize=None)
def _v3_document(path: str) -> bytes | None:
    sch = S.get_schema()
    for group, version in REGISTRY.groups():
        if _gv_path(group, version) == path:
            break
    else:
        return None
    paths = _render_paths(_all_paths((group, version), sch), v3=True)
    roots: set[str] = set()
    _refs_in(paths, roots)
    doc = {"openapi": "3.0.0", "info": _INFO, "paths": paths,
           "components": {"schemas": _definitions(sch, roots, v3=True),
                          "securitySchemes": {"BearerToken": {
                              "type": "apiKey", "description": "Bearer Token authentication",
                              "name": "authorization", "in": "header"}}}}
    return json.dumps(doc, separators=(",", ":")).encode()


def document_hash(body: bytes) -> str:
    """kube-openapi's hash of a served document: upper-case hex SHA-512."""
    return hashlib.sha512(body).hexdigest().upper()


def openapi_v3_group_version(path: str) -> bytes | None:
    """/openapi/v3/<path> body ("api/v1", "apis/apps/v1"), or None when not served."""
    return _v3_document(path.strip("/"))


def openapi_v3_hash(path: str) -> str | None:
    """The hash the index advertises for path; serve the ETag as `"<hash>"`."""
    body = openapi_v3_group_version(path)
    return document_hash(body) if body is not None else None


def openapi_v3_index() -> dict[str, Any]:
    """/openapi/v3: every group-version document with its content-addressed URL.

    client-go fetches `serverRelativeURL` verbatim; the hash makes it safe for the lead's
    handler to answer those URLs with `Cache-Control: public, immutable`.
    """
    paths: dict[str, Any] = {}
    for group, version in REGISTRY.groups():
        p = _gv_path(group, version)
        paths[p] = {"serverRelativeURL": f"/openapi/v3/{p}?hash={openapi_v3_hash(p)}"}
    return {"paths": paths}
