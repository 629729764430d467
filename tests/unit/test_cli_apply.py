"""netd.cli.commands_apply: manifest loading, the last-applied annotation, and the
apply/create/delete flows against a scripted fake client."""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from netd.cli.commands import delete_options
from netd.cli.commands_apply import (
    LAST_APPLIED, Manifest, ManifestError, apply_one, create_one, delete_one, last_applied,
    load_manifests, parse_manifests, prepare, with_last_applied,
)
from netd.cli.commands_kinds import UsageError
from netd.cli.http import ApiError, Client

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}}


# ---------------------------------------------------------------------- loading


@pytest.mark.parametrize("text,names", [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", ["a"]),
    ("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\n"
     "apiVersion: v1\nkind: Service\nmetadata: {name: b}\n", ["a", "b"]),
    ("apiVersion: v1\nkind: List\nitems:\n"
     "- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
     "- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n", ["a", "b"]),
    ('{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}', ["a"]),
    ('{"apiVersion": "v1",\t"kind": "ConfigMap", "metadata": {"name": "a"}}\n'
     '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}', ["a", "b"]),
    ('{"apiVersion":"v1","kind":"PodList","items":[{"apiVersion":"v1","kind":"Pod",'
     '"metadata":{"name":"p"}}]}', ["p"]),
    ("{apiVersion: v1, kind: ConfigMap, metadata: {name: flow}}", ["flow"]),
    ("# only a comment\n", []),
], ids=["single", "multi-doc", "list", "json", "json-stream-tabs", "typed-list",
        "yaml-flow", "empty"])
def test_parse_manifests(text: str, names: list[str]) -> None:
    got = parse_manifests(text, "f.yaml")
    assert [m.obj["metadata"]["name"] for m in got] == names
    assert all(m.source == "f.yaml" for m in got)


@pytest.mark.parametrize("text,message", [
    ("kind: ConfigMap\nmetadata: {name: a}\n",
     'error validating "f.yaml": error validating data: apiVersion not set'),
    ("metadata: {name: a}\n",
     'error validating "f.yaml": error validating data: [apiVersion not set, kind not set]'),
    ("a: b\n  c: d\n", "error parsing f.yaml: error converting YAML to JSON: yaml: line 2:"),
    ("- 1\n- 2\n", "error parsing f.yaml: error unmarshaling JSON"),
    ("just a string\n", "cannot unmarshal string into Go value"),
], ids=["no-apiversion", "no-both", "bad-yaml", "list-of-scalars", "scalar"])
def test_parse_manifests_errors(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as exc:
        parse_manifests(text, "f.yaml")
    assert message in str(exc.value)


def _doc(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def test_load_manifests_directory_sorted_filtered_and_recursive(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(_doc("b"))
    (tmp_path / "a.yml").write_text(_doc("a"))
    (tmp_path / "c.json").write_text(json.dumps(dict(CM, metadata={"name": "c"})))
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.yaml").write_text(_doc("d"))
    names = [m.obj["metadata"]["name"] for m in load_manifests([str(tmp_path)])]
    assert names == ["a", "b", "c"]
    rec = [m.obj["metadata"]["name"] for m in load_manifests([str(tmp_path)], recursive=True)]
    assert rec == ["a", "b", "c", "d"]


def test_load_manifests_stdin_and_files_in_order(tmp_path: Path) -> None:
    f = tmp_path / "one.yaml"
    f.write_text(_doc("one"))
    got = load_manifests([str(f), "-"], stdin=io.StringIO(_doc("two")))
    assert [(m.source, m.obj["metadata"]["name"]) for m in got] == [
        (str(f), "one"), ("STDIN", "two")]


def test_load_manifests_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as exc:
        load_manifests([str(tmp_path / "nope.yaml")])
    assert str(exc.value) == f'the path "{tmp_path / "nope.yaml"}" does not exist'


# ------------------------------------------------------------------- annotation


def test_last_applied_is_kubectls_encoding() -> None:
    obj = {"kind": "ConfigMap", "apiVersion": "v1",
           "metadata": {"name": "x", "namespace": "default"}, "data": {"a": "<b&c>"}}
    assert last_applied(obj) == (
        '{"apiVersion":"v1","data":{"a":"\\u003cb\\u0026c\\u003e"},"kind":"ConfigMap",'
        '"metadata":{"annotations":{},"name":"x","namespace":"default"}}\n')


def test_with_last_applied_replaces_a_stale_annotation_and_keeps_others() -> None:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "x", "annotations": {"team": "a", LAST_APPLIED: "old"}}}
    out = with_last_applied(obj)
    anns = out["metadata"]["annotations"]
    assert anns["team"] == "a"
    assert json.loads(anns[LAST_APPLIED])["metadata"]["annotations"] == {"team": "a"}
    assert obj["metadata"]["annotations"][LAST_APPLIED] == "old"   # input untouched


# ---------------------------------------------------------------------- prepare


@pytest.mark.parametrize("obj,ns,explicit,want_ns", [
    (CM, "default", False, "default"),
    (dict(CM, metadata={"name": "x", "namespace": "prod"}), "default", False, "prod"),
    (dict(CM, metadata={"name": "x", "namespace": "prod"}), "prod", True, "prod"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}, "prod", True, None),
], ids=["defaulted", "own-namespace", "matching-flag", "cluster-scoped"])
def test_prepare_namespace(obj: dict[str, Any], ns: str, explicit: bool,
                           want_ns: str | None) -> None:
    _, out = prepare(Manifest("f", obj), ns, explicit)
    assert out["metadata"].get("namespace") == want_ns


def test_prepare_namespace_mismatch_and_unknown_kind() -> None:
    obj = dict(CM, metadata={"name": "x", "namespace": "prod"})
    with pytest.raises(ManifestError) as exc:
        prepare(Manifest("f", obj), "dev", True)
    assert 'the namespace from the provided object "prod" does not match the namespace ' \
           '"dev"' in str(exc.value)
    with pytest.raises(ManifestError) as exc:
        prepare(Manifest("f.yaml", {"apiVersion": "v9", "kind": "Foo",
                                    "metadata": {"name": "a"}}), "default", False)
    assert str(exc.value) == ('resource mapping not found for name: "a" namespace: "" from '
                              '"f.yaml": no matches for kind "Foo" in version "v9"\n'
                              "ensure CRDs are installed first")


# ------------------------------------------------------------------ fake client


class FakeClient(Client):
    """Answers scripted per (method, path); records every call."""

    def __init__(self, answers: dict[tuple[str, str], list[Any]]) -> None:
        # No transport: every request is answered from the script.
        self.answers = answers
        self.calls: list[tuple[str, str, Any, str]] = []

    def _answer(self, method: str, path: str) -> Any:
        queue = self.answers[(method, path)]
        value = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(value, ApiError):
            raise value
        return value

    def get(self, path: str, query: dict[str, Any] | None = None, accept: str = "") -> Any:
        self.calls.append(("GET", path, None, ""))
        return self._answer("GET", path)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        body, content_type = kw.get("body"), kw.get("content_type", "application/json")
        self.calls.append((method, path, body, content_type))
        return self._answer(method, path)


OBJ = "/api/v1/namespaces/default/configmaps/x"
COLL = "/api/v1/namespaces/default/configmaps"
NOT_FOUND = ApiError(404, "NotFound", 'configmaps "x" not found')


def _patcher(result: dict[str, Any]) -> Any:
    seen: list[tuple[Any, Any, Any, str]] = []

    def fn(original: Any, modified: Any, current: Any, kind: str) -> dict[str, Any]:
        seen.append((original, modified, current, kind))
        return result
    fn.seen = seen  # type: ignore[attr-defined]
    return fn


def test_apply_creates_with_annotation() -> None:
    client = FakeClient({("GET", OBJ): [NOT_FOUND], ("POST", COLL): [CM]})
    out = apply_one(client, Manifest("f", CM), "default", False)
    assert out.line == "configmap/x created" and not out.error
    method, path, body, _ = client.calls[-1]
    assert (method, path) == ("POST", COLL)
    assert json.loads(body["metadata"]["annotations"][LAST_APPLIED]) == {
        "apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"},
        "metadata": {"annotations": {}, "name": "x", "namespace": "default"}}


@pytest.mark.parametrize("patch,line,methods", [
    ({}, "configmap/x unchanged", ["GET"]),
    ({"data": {"a": "c"}}, "configmap/x configured", ["GET", "PATCH"]),
], ids=["unchanged", "configured"])
def test_apply_patches_existing(patch: dict[str, Any], line: str, methods: list[str]) -> None:
    applied = with_last_applied(dict(CM, metadata={"name": "x", "namespace": "default"}))
    client = FakeClient({("GET", OBJ): [applied], ("PATCH", OBJ): [applied]})
    fn = _patcher(patch)
    out = apply_one(client, Manifest("f", CM), "default", False,
                    three_way=fn)
    assert out.line == line
    assert [c[0] for c in client.calls] == methods
    original, modified, current, kind = fn.seen[0]
    assert original == json.loads(applied["metadata"]["annotations"][LAST_APPLIED])
    assert kind == "ConfigMap" and current is applied
    assert LAST_APPLIED in modified["metadata"]["annotations"]
    if "PATCH" in methods:
        assert client.calls[-1][3] == "application/strategic-merge-patch+json"
        assert client.calls[-1][2] == patch


def test_apply_retries_on_conflict_then_reports_other_errors() -> None:
    conflict = ApiError(409, "Conflict", "the object has been modified")
    client = FakeClient({("GET", OBJ): [CM], ("PATCH", OBJ): [conflict, CM]})
    out = apply_one(client, Manifest("f", CM), "default", False,
                    three_way=_patcher({"data": {"a": "z"}}))
    assert out.line == "configmap/x configured"
    assert [c[0] for c in client.calls] == ["GET", "PATCH", "GET", "PATCH"]

    invalid = ApiError(422, "Invalid", 'ConfigMap "x" is invalid: data: bad')
    client = FakeClient({("GET", OBJ): [CM], ("PATCH", OBJ): [invalid]})
    out = apply_one(client, Manifest("f.yaml", CM), "default", False,
                    three_way=_patcher({"data": {"a": "z"}}))
    assert out.error == ('Error from server (Invalid): error when patching "f.yaml": '
                         'ConfigMap "x" is invalid: data: bad')


def test_apply_needs_a_name() -> None:
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "x-"}}
    out = apply_one(FakeClient({}), Manifest("f", obj), "default", False)
    assert "resource name may not be empty" in out.error


def test_create_and_delete_report_like_kubectl() -> None:
    exists = ApiError(409, "AlreadyExists", 'configmaps "x" already exists')
    client = FakeClient({("POST", COLL): [CM, exists, CM], ("DELETE", OBJ): [NOT_FOUND]})
    m = Manifest("f.yaml", CM)
    assert create_one(client, m, "default", False).line == "configmap/x created"
    assert LAST_APPLIED not in (client.calls[-1][2]["metadata"].get("annotations") or {})
    assert create_one(client, m, "default", False).error == (
        'Error from server (AlreadyExists): error when creating "f.yaml": configmaps "x" '
        "already exists")
    dry = create_one(client, m, "default", False, "server")
    assert dry.line == "configmap/x created (server dry run)"
    out = delete_one(client, m, "default", False, {})
    assert out.error == ('Error from server (NotFound): error when deleting "f.yaml": '
                         'configmaps "x" not found')
    assert delete_one(client, m, "default", False, {}, True).error == ""


class _Args:
    def __init__(self, cascade: str = "background", grace_period: int = -1, now: bool = False,
                 force: bool = False) -> None:
        self.cascade, self.grace_period, self.now, self.force = cascade, grace_period, now, force


@pytest.mark.parametrize("args,expected", [
    (_Args(), {"propagationPolicy": "Background"}),
    (_Args("orphan"), {"propagationPolicy": "Orphan"}),
    (_Args("Foreground", 5), {"propagationPolicy": "Foreground", "gracePeriodSeconds": 5}),
    (_Args(now=True), {"propagationPolicy": "Background", "gracePeriodSeconds": 1}),
    (_Args(force=True), {"propagationPolicy": "Background", "gracePeriodSeconds": 0}),
    (_Args(grace_period=0), {"propagationPolicy": "Background", "gracePeriodSeconds": 1}),
    (_Args(grace_period=0, force=True),
     {"propagationPolicy": "Background", "gracePeriodSeconds": 0}),
], ids=["default", "orphan", "foreground-grace", "now", "force", "zero-means-one",
        "zero-forced"])
def test_delete_options(args: _Args, expected: dict[str, Any]) -> None:
    namespace = argparse.Namespace(**vars(args))
    assert delete_options(namespace) == {"kind": "DeleteOptions", "apiVersion": "v1",
                                         **expected}


@pytest.mark.parametrize("args", [
    _Args("sideways"), _Args(grace_period=5, now=True), _Args(grace_period=5, force=True),
], ids=["cascade", "now-and-grace", "force-and-grace"])
def test_delete_options_rejects(args: _Args) -> None:
    with pytest.raises(UsageError):
        delete_options(argparse.Namespace(**vars(args)))
