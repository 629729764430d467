"""netd.cli.printing: Go tabwriter emulation and kubectl's table / -o outputs.

The table goldens were produced by the real kubectl v1.32 printing the same Table
JSON served by a stub API server."""
from __future__ import annotations

import json
from typing import Any

import pytest

from netd.cli.printing import (
    DESCRIBE_MINWIDTH, DESCRIBE_PADDING, TabWriter, as_list, go_cell, render_table,
    resource_name, table_lines, tabulate, to_json, to_yaml,
)


def _meta(name: str, ns: str, labels: dict[str, str] | None = None) -> dict[str, object]:
    meta: dict[str, object] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}


POD_TABLE: dict[str, Any] = {
    "kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "5"},
    "columnDefinitions": [
        {"name": "Name", "type": "string", "format": "name", "priority": 0},
        {"name": "Ready", "type": "string", "priority": 0},
        {"name": "Status", "type": "string", "priority": 0},
        {"name": "Restarts", "type": "string", "priority": 0},
        {"name": "Age", "type": "string", "priority": 0},
        {"name": "IP", "type": "string", "priority": 1},
        {"name": "Node", "type": "string", "priority": 1},
        {"name": "Nominated Node", "type": "string", "priority": 1},
    ],
    "rows": [
        {"cells": ["web-7d9c6d7b5d-4x2kp", "1/1", "Running", 0, "5m", "10.244.0.5", "node-1",
                   "<none>"],
         "object": _meta("web-7d9c6d7b5d-4x2kp", "default",
                         {"app": "web", "pod-template-hash": "7d9c6d7b5d"})},
        {"cells": ["a", "0/1", "ContainerCreating", 12, "3d4h", "<none>", "n", "<none>"],
         "object": _meta("a", "kube-system")},
    ],
}

KUBECTL_PLAIN = (
    "NAME                   READY   STATUS              RESTARTS   AGE\n"
    "web-7d9c6d7b5d-4x2kp   1/1     Running             0          5m\n"
    "a                      0/1     ContainerCreating   12         3d4h\n")
KUBECTL_WIDE = (
    "NAME                   READY   STATUS              RESTARTS   AGE    IP           NODE     NOMINATED NODE\n"  # noqa: E501
    "web-7d9c6d7b5d-4x2kp   1/1     Running             0          5m     10.244.0.5   node-1   <none>\n"  # noqa: E501
    "a                      0/1     ContainerCreating   12         3d4h   <none>       n        <none>\n")  # noqa: E501
KUBECTL_ALL_NS_LABELS = (
    "NAMESPACE     NAME                   READY   STATUS              RESTARTS   AGE    LABELS\n"  # noqa: E501
    "default       web-7d9c6d7b5d-4x2kp   1/1     Running             0          5m     app=web,pod-template-hash=7d9c6d7b5d\n"  # noqa: E501
    "kube-system   a                      0/1     ContainerCreating   12         3d4h   <none>\n")  # noqa: E501
KUBECTL_LABEL_COLUMN = (
    "NAME                   READY   STATUS              RESTARTS   AGE    APP\n"
    "web-7d9c6d7b5d-4x2kp   1/1     Running             0          5m     web\n"
    "a                      0/1     ContainerCreating   12         3d4h   \n")


@pytest.mark.parametrize("kwargs,expected", [
    ({}, KUBECTL_PLAIN),
    ({"wide": True}, KUBECTL_WIDE),
    ({"with_namespace": True, "show_labels": True}, KUBECTL_ALL_NS_LABELS),
    ({"label_columns": ["app"]}, KUBECTL_LABEL_COLUMN),
], ids=["plain", "wide", "all-namespaces-show-labels", "label-column"])
def test_render_table_matches_kubectl(kwargs: dict[str, object], expected: str) -> None:
    assert render_table(POD_TABLE, **kwargs) == expected


@pytest.mark.parametrize("text,minwidth,padding,expected", [
    ("a\tb\n", 6, 3, "a     b\n"),
    ("abcdefgh\tx\nab\ty\n", 6, 3, "abcdefgh   x\nab         y\n"),
    # A line without a tab ends the column block; the next block is sized afresh.
    ("a\tb\nc\ndddddd\te\n", 6, 3, "a     b\nc\ndddddd   e\n"),
    # The cell after the last tab belongs to no column and is never padded.
    ("x\tlong-trailing\nyy\tz\n", 0, 2, "x   long-trailing\nyy  z\n"),
    # Nested blocks: the second column exists only on the first two lines.
    ("a\tb\tc\naa\tbbbb\tc\naaa\td\n", 0, 1, "a   b    c\naa  bbbb c\naaa d\n"),
    ("", 6, 3, ""),
], ids=["min-width", "widest-cell", "blocks", "trailing-cell", "nested", "empty"])
def test_tabwriter(text: str, minwidth: int, padding: int, expected: str) -> None:
    assert TabWriter(minwidth, padding).format(text) == expected


def test_tabwriter_describe_settings_align_labels() -> None:
    text = "Name:\tweb\nNamespace:\tdefault\nIPs:\n  IP:\t10.0.0.1\n"
    assert TabWriter(DESCRIBE_MINWIDTH, DESCRIBE_PADDING).format(text) == (
        "Name:       web\nNamespace:  default\nIPs:\n  IP:  10.0.0.1\n")


def test_tabwriter_remember_widths_keeps_later_rows_aligned() -> None:
    tw = TabWriter(6, 3, remember_widths=True)
    assert tw.format("NAME\tSTATUS\nweb-long-name\tRunning\n") == (
        "NAME            STATUS\nweb-long-name   Running\n")
    # A later, narrower row keeps the widths seen so far (kubectl get -w).
    assert tw.format("a\tPending\n") == "a               Pending\n"
    # Without RememberWidths each flush is sized on its own.
    assert TabWriter(6, 3).format("a\tPending\n") == "a     Pending\n"


@pytest.mark.parametrize("value,expected", [
    ("x", "x"), (3, "3"), (3.0, "3"), (2.5, "2.5"), (True, "true"), (False, "false"),
    (None, "<nil>"), ("a\x1bb", "a^[b"),
], ids=["str", "int", "float-int", "float", "true", "false", "nil", "escape"])
def test_go_cell(value: object, expected: str) -> None:
    assert go_cell(value) == expected


def test_table_lines_kind_prefix_no_headers_and_event_column() -> None:
    lines = table_lines(POD_TABLE, kind_prefix="pod", headers=False)
    assert lines[0].split("\t")[0] == "pod/web-7d9c6d7b5d-4x2kp"
    assert len(lines) == 2
    lines = table_lines(POD_TABLE, event_type="ADDED")
    assert lines[0].startswith("EVENT\tNAME\t") and lines[1].startswith("ADDED   \tweb-")
    assert table_lines(POD_TABLE, event_type="MODIFIED", headers=False)[0].startswith(
        "MODIFIED\tweb-")


def test_table_lines_reuses_given_columns_for_watch_rows() -> None:
    event_table = {"columnDefinitions": [], "rows": POD_TABLE["rows"][:1]}
    lines = table_lines(event_table, headers=False,
                        columns=POD_TABLE["columnDefinitions"])
    assert lines == ["web-7d9c6d7b5d-4x2kp\t1/1\tRunning\t0\t5m"]


def test_render_table_empty_is_empty() -> None:
    assert render_table({"columnDefinitions": POD_TABLE["columnDefinitions"], "rows": []},
                        headers=False) == ""


def test_tabulate_defaults_are_kubectl_get() -> None:
    assert tabulate("A\tB\n") == "A     B\n"


@pytest.mark.parametrize("kind,group,name,expected", [
    ("Pod", "", "web", "pod/web"),
    ("Deployment", "apps", "web", "deployment.apps/web"),
    ("EndpointSlice", "discovery.k8s.io", "s", "endpointslice.discovery.k8s.io/s"),
], ids=["core", "apps", "dotted-group"])
def test_resource_name(kind: str, group: str, name: str, expected: str) -> None:
    assert resource_name(kind, group, name) == expected


def test_to_json_is_go_marshal_indent() -> None:
    text = to_json({"b": 1, "a": {"z": "<&>", "y": [1, 2]}})
    assert text == ('{\n    "a": {\n        "y": [\n            1,\n            2\n        ],\n'
                    '        "z": "\\u003c\\u0026\\u003e"\n    },\n    "b": 1\n}\n')
    assert json.loads(text) == {"b": 1, "a": {"z": "<&>", "y": [1, 2]}}


def test_to_yaml_sorted_with_literal_blocks() -> None:
    # Same shape as `kubectl create configmap ... -o yaml` prints.
    doc = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"},
           "data": {"script": "line1\nline2\n", "a": "b", "port": "80"}}
    assert to_yaml(doc) == ('apiVersion: v1\ndata:\n  a: b\n  port: "80"\n  script: |\n'
                            "    line1\n    line2\nkind: ConfigMap\nmetadata:\n  name: x\n")


@pytest.mark.parametrize("value,text", [
    ("80", '"80"'), ("true", '"true"'), ("2026-01-01T00:00:00Z", '"2026-01-01T00:00:00Z"'),
    ("", "\"\""), ("null", '"null"'), ("web", "web"), ("a: b", "'a: b'"), ("<none>", "<none>"),
], ids=["int", "bool", "timestamp", "empty", "null", "plain", "colon", "angle"])
def test_to_yaml_quotes_like_go_yaml(value: str, text: str) -> None:
    assert to_yaml({"k": value}) == f"k: {text}\n"


def test_as_list_wraps_like_kubectl() -> None:
    assert as_list([{"a": 1}]) == {"apiVersion": "v1", "items": [{"a": 1}], "kind": "List",
                                   "metadata": {"resourceVersion": ""}}
