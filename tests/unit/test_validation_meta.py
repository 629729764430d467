"""Object metadata: names per kind, namespace, labels, annotations, owner references,
finalizers, and the metadata rules of every update. Messages are Kubernetes' exact text."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from netd.api.validation import validate_create, validate_update
from tests.unit.test_validation_kinds import texts, valid

# apimachinery's RegexError joins examples as "'a', " + " or " + "'b', ": hence the double
# space Kubernetes really prints.
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                 "characters, '-' or '.', and must start and end with an alphanumeric character "
                 "(e.g. 'example.com', regex used for validation is "
                 "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
             "'-', and must start and end with an alphanumeric character (e.g. 'my-name',  or "
             "'123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
               "start with an alphabetic character, and end with an alphanumeric character "
               "(e.g. 'my-name',  or 'abc-123', regex used for validation is "
               "'[a-z]([-a-z0-9]*[a-z0-9])?')")
QNAME_MSG = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
             "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
             "'123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character (e.g. "
                   "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                   "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


def with_meta(kind: str, **fields: Any) -> dict[str, Any]:
    obj = valid(kind)
    obj["metadata"].update(fields)
    return obj


NAME_CASES = [
    ("ConfigMap", "Foo", [f'metadata.name: Invalid value: "Foo": {SUBDOMAIN_MSG}']),
    ("ConfigMap", "a..b", [f'metadata.name: Invalid value: "a..b": {SUBDOMAIN_MSG}']),
    ("ConfigMap", "a/b", [f'metadata.name: Invalid value: "a/b": {SUBDOMAIN_MSG}']),
    ("ConfigMap", "a" * 254, [f'metadata.name: Invalid value: "{"a" * 254}": '
                              'must be no more than 253 characters']),
    ("ConfigMap", "a.b-c", []),
    ("Deployment", "web.v2", []),
    ("Namespace", "Foo", [f'metadata.name: Invalid value: "Foo": {LABEL_MSG}']),
    ("Namespace", "a.b", [f'metadata.name: Invalid value: "a.b": {LABEL_MSG}']),
    ("Service", "1web", [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}']),
    ("Service", "web.v2", [f'metadata.name: Invalid value: "web.v2": {DNS1035_MSG}']),
    ("StatefulSet", "db.v2", [f'metadata.name: Invalid value: "db.v2": {LABEL_MSG}']),
    ("Event", "x.Y_Z", []),
    ("Event", "a/b", ['metadata.name: Invalid value: "a/b": may not contain \'/\'']),
    ("Event", "..", ['metadata.name: Invalid value: "..": may not be \'..\'']),
]


@pytest.mark.parametrize("kind,name,want", NAME_CASES,
                         ids=[f"{k}-{n[:12]}" for k, n, _ in NAME_CASES])
def test_names(kind: str, name: str, want: list[str]) -> None:
    got = [t for t in texts(validate_create(kind, with_meta(kind, name=name)))
           if t.startswith("metadata.name")]
    assert got == want


def test_generate_name_allows_trailing_dash_and_is_checked() -> None:
    obj = valid("ConfigMap")
    del obj["metadata"]["name"]
    obj["metadata"]["generateName"] = "web-"
    assert texts(validate_create("ConfigMap", obj)) == [
        "metadata.name: Required value: name or generateName is required"]
    obj["metadata"]["generateName"] = "Web-"
    assert texts(validate_create("ConfigMap", obj))[0] == (
        f'metadata.generateName: Invalid value: "Web-": {SUBDOMAIN_MSG}')


META_CASES = [
    ("namespace-required", "ConfigMap", {"namespace": ""}, ["metadata.namespace: Required value"]),
    ("namespace-invalid", "ConfigMap", {"namespace": "Team"},
     [f'metadata.namespace: Invalid value: "Team": {LABEL_MSG}']),
    ("namespace-on-cluster-kind", "Node", {"namespace": "default"},
     ["metadata.namespace: Forbidden: not allowed on this type"]),
    ("label-key", "ConfigMap", {"labels": {"-bad": "x"}},
     [f'metadata.labels: Invalid value: "-bad": {QNAME_MSG}']),
    ("label-key-prefix", "ConfigMap", {"labels": {"Example.com/x": "y"}},
     [f'metadata.labels: Invalid value: "Example.com/x": prefix part {SUBDOMAIN_MSG}']),
    ("label-key-two-slashes", "ConfigMap", {"labels": {"a/b/c": "y"}},
     ['metadata.labels: Invalid value: "a/b/c": a qualified name must consist of alphanumeric '
      "characters, '-', '_' or '.', and must start and end with an alphanumeric character "
      "(e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
      "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
      "'/' (e.g. 'example.com/MyName')"]),
    ("label-value-too-long", "ConfigMap", {"labels": {"app": "v" * 64}},
     [f'metadata.labels: Invalid value: "{"v" * 64}": must be no more than 63 characters']),
    ("label-value-chars", "ConfigMap", {"labels": {"app": "a b"}},
     [f'metadata.labels: Invalid value: "a b": {LABEL_VALUE_MSG}']),
    ("label-value-empty-ok", "ConfigMap", {"labels": {"app": ""}}, []),
    ("annotation-key", "ConfigMap", {"annotations": {"bad key": "x"}},
     [f'metadata.annotations: Invalid value: "bad key": {QNAME_MSG}']),
    ("annotation-key-case-insensitive", "ConfigMap", {"annotations": {"Example.COM/Key": "x"}},
     []),
    ("annotations-too-big", "ConfigMap", {"annotations": {"a": "x" * (256 * 1024)}},
     ["metadata.annotations: Too long: must have at most 262144 bytes"]),
    ("owner-fields", "ConfigMap", {"ownerReferences": [{"apiVersion": "apps/", "kind": "",
                                                        "name": "", "uid": ""}]},
     ['metadata.ownerReferences.apiVersion: Invalid value: "apps/": version must not be empty',
      'metadata.ownerReferences.kind: Invalid value: "": must not be empty',
      'metadata.ownerReferences.name: Invalid value: "": must not be empty',
      'metadata.ownerReferences.uid: Invalid value: "": must not be empty']),
    ("two-controllers", "ConfigMap", {"ownerReferences": [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1",
         "controller": True},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "2",
         "controller": True}]},
     ['metadata.ownerReferences: Invalid value: []v1.OwnerReference{...}: Only one reference '
      'can have Controller set to true. Found "true" in references for ReplicaSet/a and '
      'ReplicaSet/b']),
    ("finalizer-name", "ConfigMap", {"finalizers": ["example.com/ok", "bad name"]},
     [f'metadata.finalizers: Invalid value: "bad name": {QNAME_MSG}']),
    ("finalizers-orphan-and-foreground", "ConfigMap",
     {"finalizers": ["orphan", "foregroundDeletion"]},
     ['metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: finalizer '
      'orphan and foregroundDeletion cannot be both set']),
    ("generation-negative", "ConfigMap", {"generation": -1},
     ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]),
]


@pytest.mark.parametrize("kind,fields,want", [c[1:] for c in META_CASES],
                         ids=[c[0] for c in META_CASES])
def test_metadata(kind: str, fields: dict[str, Any], want: list[str]) -> None:
    assert texts(validate_create(kind, with_meta(kind, **fields))) == want


UPDATE_CASES = [
    ("name", {"name": "other"},
     ['metadata.name: Invalid value: "other": field is immutable']),
    ("namespace", {"namespace": "prod"},
     ['metadata.namespace: Invalid value: "prod": field is immutable']),
    ("uid", {"uid": "2222"}, ['metadata.uid: Invalid value: "2222": field is immutable']),
    ("creationTimestamp", {"creationTimestamp": "2025-01-01T00:00:00Z"},
     ['metadata.creationTimestamp: Invalid value: "2025-01-01T00:00:00Z": field is immutable']),
    ("generation-decrement", {"generation": 1},
     ["metadata.generation: Invalid value: 1: must not be decremented"]),
    ("labels-still-validated", {"labels": {"app": "a b"}},
     [f'metadata.labels: Invalid value: "a b": {LABEL_VALUE_MSG}']),
    ("uid-omitted-is-kept", {"uid": None}, []),
]


@pytest.mark.parametrize("fields,want", [c[1:] for c in UPDATE_CASES],
                         ids=[c[0] for c in UPDATE_CASES])
def test_metadata_update(fields: dict[str, Any], want: list[str]) -> None:
    old = with_meta("ConfigMap", uid="1111", creationTimestamp="2024-01-01T00:00:00Z",
                    generation=2)
    new = copy.deepcopy(old)
    for k, v in fields.items():
        if v is None:
            new["metadata"].pop(k)
        else:
            new["metadata"][k] = v
    got = [t for t in texts(validate_update("ConfigMap", new, old))
           if not t.startswith("metadata.namespace: Invalid value: \"prod\": a lowercase")]
    assert got == want


def test_no_new_finalizers_while_deleting() -> None:
    old = with_meta("ConfigMap", deletionTimestamp="2024-01-01T00:00:00Z", finalizers=["a.io/x"])
    new = copy.deepcopy(old)
    new["metadata"]["finalizers"] = ["a.io/x", "b.io/y"]
    assert texts(validate_update("ConfigMap", new, old)) == [
        'metadata.finalizers: Forbidden: no new finalizers can be added if the object is being '
        'deleted, found new finalizers []string{"b.io/y"}']
    new["metadata"]["finalizers"] = []
    assert texts(validate_update("ConfigMap", new, old)) == []
