"""Label/field selectors against apimachinery's behaviour (pkg/labels, pkg/fields)."""
from __future__ import annotations

from typing import Any

import pytest

from netd.api import errors
from netd.api.selectors import (
    FieldSelector, LabelSelector, check_field_selector, format_label_selector, is_qualified_name,
    is_valid_label_value, object_fields, parse_field_selector, parse_label_selector,
    selector_from_dict, selector_from_set, validate_label_selector,
)

# --- parse_label_selector: canonical string form --------------------------------------------

PARSE_CASES = [
    ("a=b,c!=d,e in (x,y),f notin (z),g,!h", "a=b,c!=d,e in (x,y),f notin (z),g,!h"),
    ("a==b", "a==b"),
    ("", ""),
    ("   ", ""),
    (" a = b , c ", "a=b,c"),
    ("\ta\tin\t(x, y )", "a in (x,y)"),
    ("z=1,a=2", "a=2,z=1"),                       # sorted by key
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("a in (y,x,y)", "a in (x,y)"),               # values deduplicated and sorted
    ("a in ()", "a in ()"),                       # the set {""}
    ("a=", "a="),
    ("a=,b", "a=,b"),
    ("in in (in,notin)", "in in (in,notin)"),     # keywords are values in value context
    ("a>1,b<2", "a>1,b<2"),
    ("example.com/app=web", "example.com/app=web"),
    ("!a,!b", "!a,!b"),
]


@pytest.mark.parametrize("text,canonical", PARSE_CASES, ids=[c[0] or "empty" for c in PARSE_CASES])
def test_parse_label_selector_canonical(text: str, canonical: str) -> None:
    sel = parse_label_selector(text)
    assert str(sel) == canonical
    # The canonical form parses back to itself.
    assert str(parse_label_selector(str(sel))) == canonical


PARSE_ERRORS = [
    ("a in (", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b-", 'unable to parse requirement: values[0][a]: Invalid value: "b-": a valid label '
             "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
             "and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
             "'my_value',  or '12345', regex used for validation is "
             "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
    ("-a", 'unable to parse requirement: <nil>: Invalid value: "-a": name part must consist '
           "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
           "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
           "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ("a>x", 'unable to parse requirement: values[0]: Invalid value: "x": for \'Gt\', \'Lt\' '
            "operators, the value must be an integer"),
]


@pytest.mark.parametrize("text,message", PARSE_ERRORS, ids=[c[0] for c in PARSE_ERRORS])
def test_parse_label_selector_errors(text: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as exc:
        parse_label_selector(text)
    assert exc.value.message == message
    assert exc.value.code == 400


# --- matching ----------------------------------------------------------------------------------

MATCH_CASES: list[tuple[str, dict[str, str] | None, bool]] = [
    ("", {}, True),
    ("", None, True),
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a!=b", {}, True),                           # missing key satisfies !=
    ("a!=b", {"a": "b"}, False),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {"a": "z"}, False),
    ("a notin (x)", {}, True),
    ("a notin (x)", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("a", {"b": "1"}, False),
    ("!a", {"b": "1"}, True),
    ("!a", {"a": ""}, False),
    ("a in ()", {"a": ""}, True),
    ("a in ()", {"a": "x"}, False),
    ("a=", {"a": ""}, True),
    ("a>5", {"a": "6"}, True),
    ("a>5", {"a": "5"}, False),
    ("a<5", {"a": "-1"}, True),
    ("a>5", {"a": "x"}, False),
    ("a=b,c", {"a": "b"}, False),
    ("a=b,c", {"a": "b", "c": "d"}, True),
]


@pytest.mark.parametrize("text,labels,want", MATCH_CASES,
                         ids=[f"{c[0] or 'empty'}|{c[1]}" for c in MATCH_CASES])
def test_label_selector_matches(text: str, labels: dict[str, str] | None, want: bool) -> None:
    assert parse_label_selector(text).matches(labels) is want


# --- metav1.LabelSelector --------------------------------------------------------------------

DICT_CASES: list[tuple[str, dict[str, Any] | None, dict[str, str], bool, str, bool]] = [
    # id, selector, labels, matches, str, empty
    ("nil-matches-nothing", None, {"a": "b"}, False, "", False),
    ("nil-matches-nothing-empty-labels", None, {}, False, "", False),
    ("empty-matches-everything", {}, {"x": "y"}, True, "", True),
    ("empty-fields-match-everything", {"matchLabels": {}, "matchExpressions": []}, {}, True, "",
     True),
    ("match-labels", {"matchLabels": {"b": "2", "a": "1"}}, {"a": "1", "b": "2"}, True,
     "a=1,b=2", False),
    ("match-labels-miss", {"matchLabels": {"a": "1"}}, {"a": "2"}, False, "a=1", False),
    ("in", {"matchExpressions": [{"key": "a", "operator": "In", "values": ["y", "x"]}]},
     {"a": "x"}, True, "a in (x,y)", False),
    ("notin", {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]},
     {}, True, "a notin (x)", False),
    ("exists", {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"a": ""}, True,
     "a", False),
    ("does-not-exist", {"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]},
     {"a": ""}, False, "!a", False),
    ("mixed", {"matchLabels": {"app": "web"},
               "matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe"]}]},
     {"app": "web", "tier": "fe"}, True, "app=web,tier in (fe)", False),
]


@pytest.mark.parametrize("sel,labels,want,text,empty", [c[1:] for c in DICT_CASES],
                         ids=[c[0] for c in DICT_CASES])
def test_selector_from_dict(sel: dict[str, Any] | None, labels: dict[str, str], want: bool,
                            text: str, empty: bool) -> None:
    s = selector_from_dict(sel)
    assert s.matches(labels) is want
    assert str(s) == text
    assert s.empty() is empty


DICT_ERRORS = [
    ("bad-operator", {"matchExpressions": [{"key": "a", "operator": "Foo"}]},
     '"Foo" is not a valid label selector operator'),
    ("in-without-values", {"matchExpressions": [{"key": "a", "operator": "In"}]},
     "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"),
    ("exists-with-values",
     {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not '
     "exist"),
    ("bad-key", {"matchLabels": {"a b": "c"}}, 'key: Invalid value: "a b": name part must'),
]


@pytest.mark.parametrize("sel,message", [c[1:] for c in DICT_ERRORS],
                         ids=[c[0] for c in DICT_ERRORS])
def test_selector_from_dict_errors(sel: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.BadRequest) as exc:
        selector_from_dict(sel)
    assert exc.value.message.startswith(message)


@pytest.mark.parametrize("sel,text", [
    (None, "<none>"), ({}, "<none>"), ({"matchLabels": {"a": "b"}}, "a=b"),
    ({"matchExpressions": [{"key": "a", "operator": "Bad"}]}, "<error>"),
], ids=["nil", "empty", "labels", "error"])
def test_format_label_selector(sel: dict[str, Any] | None, text: str) -> None:
    assert format_label_selector(sel) == text


@pytest.mark.parametrize("labels,want,text", [
    (None, True, ""), ({}, True, ""), ({"b": "2", "a": "1"}, False, "a=1,b=2"),
], ids=["nil", "empty", "two"])
def test_selector_from_set(labels: dict[str, str] | None, want: bool, text: str) -> None:
    sel = selector_from_set(labels)
    assert sel.empty() is want
    assert str(sel) == text
    assert sel.matches({"a": "1", "b": "2", "c": "3"})
    if labels:
        assert not sel.matches({"a": "1"})


def test_selector_is_immutable_and_requires_exact_match() -> None:
    sel = parse_label_selector("a=b,c in (d),e in (f,g)")
    assert isinstance(sel, LabelSelector)
    with pytest.raises(AttributeError):
        sel.nothing = True  # type: ignore[misc]
    assert sel.requires_exact_match("a") == "b"
    assert sel.requires_exact_match("c") == "d"
    assert sel.requires_exact_match("e") is None
    assert sel.requires_exact_match("z") is None


# --- validate_label_selector ------------------------------------------------------------------

VALIDATE_CASES: list[tuple[str, dict[str, Any] | None, list[str]]] = [
    ("nil", None, []),
    ("ok", {"matchLabels": {"app": "x"},
            "matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}, []),
    ("bad-operator", {"matchExpressions": [{"key": "a", "operator": "Foo"}]},
     ['spec.selector.matchExpressions[0].operator: Invalid value: "Foo": not a valid selector '
      "operator"]),
    ("in-needs-values", {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when "
      "`operator` is 'In' or 'NotIn'"]),
    ("exists-forbids-values",
     {"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]},
     ["spec.selector.matchExpressions[0].values: Forbidden: may not be specified when "
      "`operator` is 'Exists' or 'DoesNotExist'"]),
    ("bad-value", {"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "-x"]}]},
     ['spec.selector.matchExpressions[0].values[1]: Invalid value: "-x": a valid label must be '
      "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
      "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
      "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ("bad-match-label-key", {"matchLabels": {"/x": "y"}},
     ['spec.selector.matchLabels: Invalid value: "/x": prefix part must be non-empty']),
]


@pytest.mark.parametrize("sel,want", [c[1:] for c in VALIDATE_CASES],
                         ids=[c[0] for c in VALIDATE_CASES])
def test_validate_label_selector(sel: dict[str, Any] | None, want: list[str]) -> None:
    assert [str(e) for e in validate_label_selector(sel, "spec.selector")] == want


@pytest.mark.parametrize("key,n_errors", [
    ("app", 0), ("example.com/app", 0), ("a" * 63, 0), ("a" * 64, 1), ("Example.com/x", 1),
    ("a/b/c", 1), ("", 2), ("a_b.c-d", 0), ("_a", 1),
], ids=["plain", "prefixed", "63", "64", "upper-prefix", "two-slashes", "empty", "punct",
        "leading-underscore"])
def test_is_qualified_name(key: str, n_errors: int) -> None:
    assert len(is_qualified_name(key)) == n_errors


@pytest.mark.parametrize("value,ok", [
    ("", True), ("abc", True), ("a.b_c-d", True), ("-a", False), ("a" * 63, True),
    ("a" * 64, False), ("a b", False),
], ids=["empty", "plain", "punct", "leading-dash", "63", "64", "space"])
def test_is_valid_label_value(value: str, ok: bool) -> None:
    assert (not is_valid_label_value(value)) is ok


# --- field selectors ------------------------------------------------------------------------------

FIELD_PARSE = [
    ("", "", 0),
    ("metadata.name=foo", "metadata.name=foo", 1),
    ("metadata.name==foo", "metadata.name=foo", 1),
    ("status.phase!=Running,metadata.name=x", "metadata.name=x,status.phase!=Running", 2),
    ("a=b\\,c", "a=b\\,c", 1),                     # escaped comma stays in the value
    ("a=x\\=y\\\\z", "a=x\\=y\\\\z", 1),
    ("a=", "a=", 1),
    ("a=b,", "a=b", 1),
]


@pytest.mark.parametrize("text,canonical,n", FIELD_PARSE, ids=[c[0] or "empty" for c in FIELD_PARSE])
def test_parse_field_selector(text: str, canonical: str, n: int) -> None:
    sel = parse_field_selector(text)
    assert str(sel) == canonical
    assert len(sel.terms) == n
    assert sel.empty() is (n == 0)


def test_field_selector_unescapes_values() -> None:
    sel = parse_field_selector("a=b\\,c,d=x\\=y\\\\z")
    assert [(t.field, t.op, t.value) for t in sel.terms] == [("a", "=", "b,c"),
                                                            ("d", "=", "x=y\\z")]


FIELD_ERRORS = [
    ("a", "invalid selector: 'a'; can't understand 'a'"),
    ("a=b,c", "invalid selector: 'a=b,c'; can't understand 'c'"),
    ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
    ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ("a=b=c", "invalid field selector: unescaped character in value: 61"),
]


@pytest.mark.parametrize("text,message", FIELD_ERRORS, ids=[c[0] for c in FIELD_ERRORS])
def test_parse_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as exc:
        parse_field_selector(text)
    assert exc.value.message == message


POD = {"metadata": {"name": "web-1", "namespace": "default"},
       "spec": {"nodeName": "node-a", "restartPolicy": "Always", "hostNetwork": True,
                "schedulerName": "default-scheduler", "serviceAccountName": "default"},
       "status": {"phase": "Running", "podIP": "10.0.0.1",
                  "podIPs": [{"ip": "10.244.0.5"}, {"ip": "fd00::5"}]}}

FIELD_MATCH = [
    ("Pod", POD, "spec.nodeName=node-a", True),
    ("Pod", POD, "spec.nodeName!=node-a", False),
    ("Pod", POD, "status.phase=Running,metadata.namespace=default", True),
    ("Pod", POD, "spec.hostNetwork=true", True),
    ("Pod", POD, "status.podIP=10.244.0.5", True),         # podIPs[0] wins over podIP
    ("Pod", POD, "status.nominatedNodeName=", True),        # unset field is ""
    ("Pod", {"metadata": {"name": "p"}}, "spec.hostNetwork=false", True),
    ("Pod", POD, "metadata.name==web-1", True),
    ("Node", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}},
     "spec.unschedulable=true", True),
    ("Node", {"metadata": {"name": "n"}}, "spec.unschedulable=false", True),
    ("Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Terminating"}},
     "status.phase=Terminating", True),
    ("ReplicationController", {"metadata": {"name": "rc"}, "status": {"replicas": 3}},
     "status.replicas=3", True),
    ("Event", {"metadata": {"name": "e", "namespace": "d"},
               "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "u1"},
               "reason": "Started", "type": "Normal", "reportingComponent": "kubelet"},
     "involvedObject.kind=Pod,involvedObject.name=web-1,source=kubelet,type=Normal", True),
    ("Event", {"metadata": {"name": "e"}, "source": {"component": "sched"},
               "reportingComponent": "x"}, "source=sched", True),
    ("Service", {"metadata": {"name": "s"}, "spec": {"type": "ClusterIP",
                                                      "clusterIP": "10.96.0.10"}},
     "spec.clusterIP=10.96.0.10,spec.type=ClusterIP", True),
    ("ConfigMap", {"metadata": {"name": "c", "namespace": "kube-system"}},
     "metadata.namespace!=default", True),
]


@pytest.mark.parametrize("kind,obj,text,want", FIELD_MATCH,
                         ids=[f"{c[0]}:{c[2]}" for c in FIELD_MATCH])
def test_field_selector_matches_object_fields(kind: str, obj: dict[str, Any], text: str,
                                              want: bool) -> None:
    sel = check_field_selector(kind, parse_field_selector(text))
    assert sel.matches(object_fields(kind, obj)) is want


FIELD_CHECK_ERRORS = [
    ("Pod", "spec.foo=x", "field label not supported: spec.foo"),
    ("Node", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("Event", "involvedObject.foo=x", "field label not supported: involvedObject.foo"),
    ("ConfigMap", "data.x=y",
     '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("Deployment", "status.replicas=1",
     '"status.replicas" is not a known field selector: only "metadata.name", '
     '"metadata.namespace"'),
]


@pytest.mark.parametrize("kind,text,message", FIELD_CHECK_ERRORS,
                         ids=[f"{c[0]}:{c[1]}" for c in FIELD_CHECK_ERRORS])
def test_check_field_selector_rejects(kind: str, text: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as exc:
        check_field_selector(kind, parse_field_selector(text))
    assert exc.value.message == message


def test_check_field_selector_rewrites_legacy_spec_host() -> None:
    sel = check_field_selector("Pod", parse_field_selector("spec.host=node-a"))
    assert isinstance(sel, FieldSelector)
    assert str(sel) == "spec.nodeName=node-a"
    assert sel.matches(object_fields("Pod", POD))
    assert sel.requires_exact_match("spec.nodeName") == "node-a"
    # Callers that keep the selector as parsed still match the alias.
    assert parse_field_selector("spec.host=node-a").matches(object_fields("Pod", POD))


def test_object_fields_cluster_scoped_has_no_namespace() -> None:
    assert object_fields("Node", {"metadata": {"name": "n"}}) == {
        "metadata.name": "n", "spec.unschedulable": "false"}
    assert object_fields("ConfigMap", {"metadata": {"name": "c", "namespace": "d"}}) == {
        "metadata.name": "c", "metadata.namespace": "d"}
