"""Workload validation: ReplicationController, Deployment, ReplicaSet, StatefulSet,
DaemonSet, ControllerRevision — selectors, templates, strategies, immutability, status."""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest

from netd.api.validation import validate_create, validate_status_update, validate_update
from tests.unit.test_validation_kinds import texts, valid

Mutate = Callable[[dict[str, Any]], None]
MISMATCH = "`selector` does not match template `labels`"


def spec_set(**fields: Any) -> Mutate:
    def mutate(obj: dict[str, Any]) -> None:
        for k, v in fields.items():
            if v is None:
                obj["spec"].pop(k, None)
            else:
                obj["spec"][k] = v
    return mutate


def tmpl_set(**fields: Any) -> Mutate:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["spec"].update(fields)
    return mutate


def labels(value: dict[str, str]) -> Mutate:
    def mutate(obj: dict[str, Any]) -> None:
        obj["spec"]["template"]["metadata"]["labels"] = value
    return mutate


CASES: list[tuple[str, str, Mutate, list[str]]] = [
    ("deploy-mismatch", "Deployment", labels({"app": "other"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
      + MISMATCH]),
    ("deploy-selector-required", "Deployment", spec_set(selector=None),
     ["spec.selector: Required value",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      + MISMATCH]),
    ("deploy-selector-empty", "Deployment", spec_set(selector={}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
      "deployment"]),
    ("deploy-selector-expression", "Deployment",
     spec_set(selector={"matchExpressions": [{"key": "app", "operator": "In"}]}),
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when "
      "`operator` is 'In' or 'NotIn'",
      'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      + MISMATCH]),
    ("deploy-selector-operator", "Deployment",
     spec_set(selector={"matchLabels": {"app": "web"},
                        "matchExpressions": [{"key": "app", "operator": "Has"}]}),
     ['spec.selector.matchExpressions[0].operator: Invalid value: "Has": not a valid selector '
      'operator']),
    ("deploy-expressions-match", "Deployment",
     spec_set(selector={"matchExpressions": [{"key": "app", "operator": "In",
                                              "values": ["web", "api"]}]}), []),
    ("deploy-replicas", "Deployment", spec_set(replicas=-1),
     ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("deploy-restart-policy", "Deployment", tmpl_set(restartPolicy="Never"),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: '
      '"Always"']),
    ("deploy-template-pod-spec", "Deployment", tmpl_set(containers=[]),
     ["spec.template.spec.containers: Required value"]),
    ("deploy-template-label-path", "Deployment", labels({"app": "web", "x": "a b"}),
     ['spec.template.labels: Invalid value: "a b": a valid label must be an empty string or '
      "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
      "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
      "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
    ("deploy-active-deadline", "Deployment", tmpl_set(activeDeadlineSeconds=10),
     ["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in "
      "Deployment is not Supported"]),
    ("deploy-both-zero", "Deployment",
     spec_set(strategy={"type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}}),
     ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, "
      'IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0']),
    ("deploy-bad-percent", "Deployment",
     spec_set(strategy={"type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "25", "maxSurge": 1}}),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, '
      'IntVal:0, StrVal:"25"}: a valid percent string must be a numeric string followed by an '
      "ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
    ("deploy-over-100", "Deployment",
     spec_set(strategy={"type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": "150%", "maxSurge": 1}}),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, '
      'IntVal:0, StrVal:"150%"}: must not be greater than 100%']),
    ("deploy-recreate-rolling", "Deployment",
     spec_set(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is "
      "'Recreate'"]),
    ("deploy-strategy-type", "Deployment", spec_set(strategy={"type": "BlueGreen"}),
     ['spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", '
      'RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", '
      '"RollingUpdate"']),
    ("deploy-deadline", "Deployment", spec_set(minReadySeconds=600),
     ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]),
    ("rs-mismatch", "ReplicaSet", labels({"app": "web", "tier": "x"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web", '
      '"tier":"x"}: ' + MISMATCH]),
    ("rs-empty-selector", "ReplicaSet", spec_set(selector={"matchLabels": {}}),
     ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{}, "
      "MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for "
      "deployment"]),
    ("rc-selector-required", "ReplicationController", spec_set(selector={}),
     ["spec.selector: Required value"]),
    ("rc-mismatch", "ReplicationController", spec_set(selector={"app": "api"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      + MISMATCH]),
    ("rc-template-required", "ReplicationController", spec_set(template=None),
     ["spec.template: Required value"]),
    ("rc-restart", "ReplicationController", tmpl_set(restartPolicy="OnFailure"),
     ['spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: '
      '"Always"']),
    ("sts-mismatch", "StatefulSet", labels({"app": "web"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      + MISMATCH]),
    ("sts-pod-management", "StatefulSet", spec_set(podManagementPolicy="Random"),
     ['spec.podManagementPolicy: Invalid value: "Random": must be \'OrderedReady\' or '
      "'Parallel'"]),
    ("sts-partition", "StatefulSet",
     spec_set(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": -1}}),
     ["spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or "
      "equal to 0"]),
    ("sts-max-unavailable-zero", "StatefulSet",
     spec_set(updateStrategy={"type": "RollingUpdate",
                              "rollingUpdate": {"partition": 0, "maxUnavailable": 0}}),
     ['spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: '
      'intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: cannot be 0']),
    ("sts-strategy-type", "StatefulSet", spec_set(updateStrategy={"type": "Rolling"}),
     ['spec.updateStrategy: Invalid value: apps.StatefulSetUpdateStrategy{Type:"Rolling", '
      'RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}: must be \'RollingUpdate\' '
      "or 'OnDelete'"]),
    ("sts-ordinals", "StatefulSet", spec_set(ordinals={"start": -1}),
     ["spec.ordinals.start: Invalid value: -1: must be greater than or equal to 0"]),
    ("sts-retention", "StatefulSet",
     spec_set(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Keep",
                                                    "whenScaled": "Retain"}),
     ['spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: "Keep": '
      'supported values: "Retain", "Delete"']),
    ("sts-claim-name", "StatefulSet",
     spec_set(volumeClaimTemplates=[{"metadata": {}, "spec": {}}]),
     ["spec.volumeClaimTemplates[0].metadata.name: Required value: name or generateName is "
      "required"]),
    ("sts-mounts-claims", "StatefulSet", lambda o: None, []),
    ("ds-mismatch", "DaemonSet", labels({"app": "web"}),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: '
      + MISMATCH]),
    ("ds-no-selector", "DaemonSet", spec_set(selector=None),
     ['spec.template.metadata.labels: Invalid value: map[string]string{"app":"agent"}: '
      + MISMATCH]),
    ("ds-surge-and-unavailable", "DaemonSet",
     spec_set(updateStrategy={"type": "RollingUpdate",
                              "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}),
     ["spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:0, "
      'IntVal:1, StrVal:""}: may not be set when maxUnavailable is non-zero']),
    ("ds-both-zero", "DaemonSet",
     spec_set(updateStrategy={"type": "RollingUpdate",
                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
     ["spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when "
      "maxSurge is 0"]),
    ("ds-strategy-type", "DaemonSet", spec_set(updateStrategy={"type": "Surge"}),
     ['spec.updateStrategy: Unsupported value: apps.DaemonSetUpdateStrategy{Type:"Surge", '
      'RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: "RollingUpdate", '
      '"OnDelete"']),
]


@pytest.mark.parametrize("kind,mutate,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_workload_create(kind: str, mutate: Mutate, want: list[str]) -> None:
    obj = valid(kind)
    mutate(obj)
    assert texts(validate_create(kind, obj)) == want


def test_controller_revision() -> None:
    obj = valid("ControllerRevision")
    obj["revision"] = -1
    del obj["data"]
    assert texts(validate_create("ControllerRevision", obj)) == [
        "data: Required value: data is mandatory",
        "revision: Invalid value: -1: must be greater than or equal to 0"]
    old = valid("ControllerRevision")
    new = copy.deepcopy(old)
    new["data"] = {"spec": {"x": 1}}
    assert texts(validate_update("ControllerRevision", new, old)) == [
        "data: Invalid value: runtime.RawExtension{...}: field is immutable"]


SELECTOR_CHANGE = {"matchLabels": {"app": "web", "v": "2"}}


@pytest.mark.parametrize("kind", ["Deployment", "ReplicaSet", "DaemonSet"])
def test_apps_selector_immutable(kind: str) -> None:
    old = valid(kind)
    new = copy.deepcopy(old)
    app = old["spec"]["selector"]["matchLabels"]["app"]
    new["spec"]["selector"] = {"matchLabels": {"app": app, "v": "2"}}
    new["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    assert texts(validate_update(kind, new, old)) == [
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"
        f'"app":"{app}", "v":"2"}}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}: '
        "field is immutable"]


def test_rc_selector_is_mutable() -> None:
    old = valid("ReplicationController")
    new = copy.deepcopy(old)
    new["spec"]["selector"] = {"app": "web", "v": "2"}
    new["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    assert texts(validate_update("ReplicationController", new, old)) == []


STS_FORBIDDEN = ("spec: Forbidden: updates to statefulset spec for fields other than "
                 "'replicas', 'ordinals', 'template', 'updateStrategy', "
                 "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


@pytest.mark.parametrize("mutate,want", [
    (spec_set(replicas=5), []),
    (labels({"app": "db", "v": "2"}), []),
    (spec_set(updateStrategy={"type": "OnDelete"}), []),
    (spec_set(minReadySeconds=5), []),
    (spec_set(ordinals={"start": 1}), []),
    (spec_set(serviceName="db2"), [STS_FORBIDDEN]),
    (spec_set(revisionHistoryLimit=3), [STS_FORBIDDEN]),
    (spec_set(podManagementPolicy="Parallel"), [STS_FORBIDDEN]),
    (lambda o: o["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"].update(
        storage="2Gi"), [STS_FORBIDDEN]),
], ids=["replicas", "template", "strategy", "minReadySeconds", "ordinals", "serviceName",
        "revisionHistoryLimit", "podManagementPolicy", "claim-size"])
def test_statefulset_update(mutate: Mutate, want: list[str]) -> None:
    old = valid("StatefulSet")
    new = copy.deepcopy(old)
    mutate(new)
    assert texts(validate_update("StatefulSet", new, old)) == want


@pytest.mark.parametrize("kind,status,want", [
    ("Deployment", {"replicas": 3, "readyReplicas": 3, "availableReplicas": 2}, []),
    ("Deployment", {"replicas": 1, "readyReplicas": 2},
     ["status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"]),
    ("ReplicaSet", {"replicas": -1},
     ["status.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("StatefulSet", {"replicas": 2, "readyReplicas": 1, "availableReplicas": 2},
     ["status.availableReplicas: Invalid value: 2: cannot be greater than "
      "status.readyReplicas"]),
    ("DaemonSet", {"numberReady": -1},
     ["status.numberReady: Invalid value: -1: must be greater than or equal to 0"]),
    ("ReplicationController", {"replicas": 2, "fullyLabeledReplicas": 2}, []),
], ids=["deploy-ok", "deploy-ready-above", "rs-negative", "sts-available-above-ready",
        "ds-negative", "rc-ok"])
def test_workload_status(kind: str, status: dict[str, Any], want: list[str]) -> None:
    old = valid(kind)
    new = copy.deepcopy(old)
    new["status"] = status
    assert texts(validate_status_update(kind, new, old)) == want


def test_collision_count_cannot_decrease() -> None:
    old = valid("Deployment")
    old["status"] = {"collisionCount": 2}
    new = copy.deepcopy(old)
    new["status"] = {"collisionCount": 1}
    assert texts(validate_status_update("Deployment", new, old)) == [
        "status.collisionCount: Invalid value: 1: cannot be decremented"]
