"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386) as kube-apiserver applies them."""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from netd.api import errors
from netd.api.patch import JSONPatchError, apply_json_patch, apply_merge_patch

DOC: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web", "a/b": "slash", "m~n": "tilde"}},
    "spec": {"replicas": 2, "paused": False,
             "template": {"spec": {"containers": [{"name": "c0", "image": "i0"},
                                                  {"name": "c1", "image": "i1"}]}}},
}

def _containers(d: dict[str, Any]) -> list[dict[str, Any]]:
    return d["spec"]["template"]["spec"]["containers"]


def _labels(d: dict[str, Any]) -> dict[str, str]:
    return d["metadata"]["labels"]


# (id, ops, how the expected document differs from DOC)
JSON_PATCH_CASES: list[tuple[str, list[dict[str, Any]], Callable[[dict[str, Any]], Any]]] = [
    ("add-member", [{"op": "add", "path": "/metadata/labels/tier", "value": "fe"}],
     lambda d: _labels(d).update(tier="fe")),
    ("add-replaces-existing", [{"op": "add", "path": "/spec/replicas", "value": 5}],
     lambda d: d["spec"].update(replicas=5)),
    ("add-append-dash", [{"op": "add", "path": "/spec/template/spec/containers/-",
                          "value": {"name": "c2"}}],
     lambda d: _containers(d).append({"name": "c2"})),
    ("add-insert-index", [{"op": "add", "path": "/spec/template/spec/containers/0",
                           "value": {"name": "first"}}],
     lambda d: _containers(d).insert(0, {"name": "first"})),
    ("add-at-end-index", [{"op": "add", "path": "/spec/template/spec/containers/2",
                           "value": {"name": "last"}}],
     lambda d: _containers(d).append({"name": "last"})),
    ("remove-member", [{"op": "remove", "path": "/metadata/labels/app"}],
     lambda d: _labels(d).pop("app")),
    ("remove-escaped-slash", [{"op": "remove", "path": "/metadata/labels/a~1b"}],
     lambda d: _labels(d).pop("a/b")),
    ("remove-escaped-tilde", [{"op": "remove", "path": "/metadata/labels/m~0n"}],
     lambda d: _labels(d).pop("m~n")),
    ("remove-index", [{"op": "remove", "path": "/spec/template/spec/containers/0"}],
     lambda d: _containers(d).pop(0)),
    ("replace-scalar", [{"op": "replace", "path": "/spec/replicas", "value": 4}],
     lambda d: d["spec"].update(replicas=4)),
    ("replace-index", [{"op": "replace", "path": "/spec/template/spec/containers/1",
                        "value": {"name": "x"}}],
     lambda d: _containers(d).__setitem__(1, {"name": "x"})),
    ("move", [{"op": "move", "from": "/metadata/labels/app", "path": "/metadata/labels/name"}],
     lambda d: _labels(d).update(name=_labels(d).pop("app"))),
    ("move-in-array", [{"op": "move", "from": "/spec/template/spec/containers/0",
                        "path": "/spec/template/spec/containers/-"}],
     lambda d: _containers(d).append(_containers(d).pop(0))),
    ("copy", [{"op": "copy", "from": "/spec/template/spec/containers/0",
               "path": "/spec/template/spec/containers/-"}],
     lambda d: _containers(d).append(dict(_containers(d)[0]))),
    ("test-then-replace", [{"op": "test", "path": "/spec/replicas", "value": 2},
                           {"op": "replace", "path": "/spec/replicas", "value": 3}],
     lambda d: d["spec"].update(replicas=3)),
    ("test-object-any-key-order", [{"op": "test", "path": "/metadata/labels",
                                    "value": {"m~n": "tilde", "a/b": "slash", "app": "web"}}],
     lambda d: None),
    ("test-false-is-not-zero", [{"op": "test", "path": "/spec/paused", "value": False}],
     lambda d: None),
    ("empty", [], lambda d: None),
]


@pytest.mark.parametrize("ops,change", [c[1:] for c in JSON_PATCH_CASES],
                         ids=[c[0] for c in JSON_PATCH_CASES])
def test_apply_json_patch(ops: list[dict[str, Any]],
                          change: Callable[[dict[str, Any]], Any]) -> None:
    before, ops_before = copy.deepcopy(DOC), copy.deepcopy(ops)
    want = copy.deepcopy(DOC)
    change(want)
    assert apply_json_patch(DOC, ops) == want
    assert DOC == before and ops == ops_before          # inputs untouched


def test_json_patch_result_does_not_alias_op_values() -> None:
    value = {"k": ["v"]}
    got = apply_json_patch({"a": {}}, [{"op": "add", "path": "/a/x", "value": value}])
    got["a"]["x"]["k"].append("mutated")
    assert value == {"k": ["v"]}


def test_json_patch_copy_is_deep() -> None:
    got = apply_json_patch({"a": {"l": [1]}}, [{"op": "copy", "from": "/a", "path": "/b"}])
    got["b"]["l"].append(2)
    assert got["a"] == {"l": [1]}


JSON_PATCH_FAILURES: list[tuple[str, list[Any], str]] = [
    ("test-fails", [{"op": "test", "path": "/spec/replicas", "value": 3}],
     "testing value /spec/replicas failed: test failed"),
    ("test-bool-vs-int", [{"op": "test", "path": "/spec/paused", "value": 0}],
     "testing value /spec/paused failed: test failed"),
    ("test-missing", [{"op": "test", "path": "/spec/nope", "value": 1}],
     "testing value /spec/nope failed: test failed"),
    ("remove-missing-key", [{"op": "remove", "path": "/metadata/labels/nope"}],
     "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent key: "
     "nope: missing value"),
    ("remove-missing-parent", [{"op": "remove", "path": "/status/phase"}],
     'remove operation does not apply: doc is missing path: "/status/phase": missing value'),
    ("add-missing-parent", [{"op": "add", "path": "/status/phase", "value": "x"}],
     'add operation does not apply: doc is missing path: "/status/phase": missing value'),
    ("replace-missing-key", [{"op": "replace", "path": "/spec/nope", "value": 1}],
     "replace operation does not apply: doc is missing key: /spec/nope: missing value"),
    ("add-index-out-of-range", [{"op": "add", "path": "/spec/template/spec/containers/5",
                                 "value": {}}],
     "error in add for path: '/spec/template/spec/containers/5': Unable to access invalid "
     "index: 5: invalid index referenced"),
    ("remove-dash", [{"op": "remove", "path": "/spec/template/spec/containers/-"}],
     "error in remove for path: '/spec/template/spec/containers/-': value was not a proper "
     "array index: '-'"),
    ("negative-index", [{"op": "replace", "path": "/spec/template/spec/containers/-1",
                         "value": {}}],
     "error in replace for path: '/spec/template/spec/containers/-1': value was not a proper "
     "array index: '-1'"),
    ("unknown-op", [{"op": "frobnicate", "path": "/a"}], "Unexpected kind: frobnicate"),
    ("missing-op", [{"path": "/a"}], "Unexpected kind: unknown"),
    ("missing-value", [{"op": "add", "path": "/a"}],
     "add operation, missing value field: missing value"),
    ("move-into-child", [{"op": "move", "from": "/spec", "path": "/spec/template/x"}],
     "move operation does not apply: from /spec is a prefix of path /spec/template/x: invalid "
     "state detected"),
    ("second-op-fails-atomically", [{"op": "replace", "path": "/spec/replicas", "value": 9},
                                    {"op": "test", "path": "/spec/replicas", "value": 2}],
     "testing value /spec/replicas failed: test failed"),
]


@pytest.mark.parametrize("ops,detail", [c[1:] for c in JSON_PATCH_FAILURES],
                         ids=[c[0] for c in JSON_PATCH_FAILURES])
def test_json_patch_failures_are_422(ops: list[Any], detail: str) -> None:
    before = copy.deepcopy(DOC)
    with pytest.raises(JSONPatchError) as exc:
        apply_json_patch(DOC, ops)
    err = exc.value
    assert isinstance(err, errors.APIError)
    assert err.detail == detail
    status = err.status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert status["details"]["causes"] == [{"reason": "UnexpectedServerResponse",
                                            "message": detail}]
    assert DOC == before


@pytest.mark.parametrize("body", [{"op": "add"}, "x", [1], [["op"]]],
                         ids=["object", "string", "list-of-int", "list-of-list"])
def test_json_patch_malformed_body_is_400(body: Any) -> None:
    with pytest.raises(errors.BadRequest):
        apply_json_patch(DOC, body)


def test_json_patch_replace_root() -> None:
    assert apply_json_patch(DOC, [{"op": "replace", "path": "", "value": {"a": 1}}]) == {"a": 1}
    with pytest.raises(JSONPatchError):
        apply_json_patch(DOC, [{"op": "replace", "path": "", "value": [1]}])


# --- merge patch -----------------------------------------------------------------------------

MERGE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # RFC 7386 appendix A examples and kubectl's own shapes.
    ("replace-member", {"a": "b"}, {"a": "c"}, {"a": "c"}),
    ("add-member", {"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ("delete-member", {"a": "b"}, {"a": None}, {}),
    ("delete-one-of-two", {"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ("list-replaced", {"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ("scalar-to-list", {"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ("nested-delete", {"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ("list-of-objects-replaced", {"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ("nulls-inside-new-object-dropped", {"e": None}, {"a": 1, "c": {"d": None}},
     {"e": None, "a": 1, "c": {}}),
    ("empty-patch", {"a": 1}, {}, {"a": 1}),
    ("kubectl-scale", {"spec": {"replicas": 1, "selector": {"app": "x"}}},
     {"spec": {"replicas": 4}}, {"spec": {"replicas": 4, "selector": {"app": "x"}}}),
    ("kubectl-label-remove", {"metadata": {"labels": {"a": "1", "b": "2"}}},
     {"metadata": {"labels": {"a": None}}}, {"metadata": {"labels": {"b": "2"}}}),
    ("containers-replaced-whole", {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}},
     {"spec": {"containers": [{"name": "b", "image": "x"}]}},
     {"spec": {"containers": [{"name": "b", "image": "x"}]}}),
]


@pytest.mark.parametrize("doc,patch,want", [c[1:] for c in MERGE_CASES],
                         ids=[c[0] for c in MERGE_CASES])
def test_apply_merge_patch(doc: dict[str, Any], patch: dict[str, Any],
                           want: dict[str, Any]) -> None:
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    got = apply_merge_patch(doc, patch)
    assert got == want
    assert doc == doc_before and patch == patch_before


def test_merge_patch_result_does_not_alias_inputs() -> None:
    doc = {"a": {"b": [1]}}
    patch = {"c": {"d": [2]}}
    got = apply_merge_patch(doc, patch)
    got["a"]["b"].append(9)
    got["c"]["d"].append(9)
    assert doc == {"a": {"b": [1]}} and patch == {"c": {"d": [2]}}


@pytest.mark.parametrize("patch", [[1], "x", None], ids=["list", "string", "null"])
def test_merge_patch_must_be_object(patch: Any) -> None:
    with pytest.raises(errors.BadRequest):
        apply_merge_patch({"a": 1}, patch)
