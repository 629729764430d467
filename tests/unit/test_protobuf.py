"""Protobuf request bodies (application/vnd.kubernetes.protobuf) decoded to kubectl's JSON.

Three independent sources of truth:
- bodies captured from the real kubectl 1.32 (fixtures/protobuf/*.bin) against the JSON the
  same command prints with `--dry-run=client -o json` (fixtures/protobuf/*.json);
- byte strings assembled by hand at the wire level from the .proto field numbers;
- the official Python client's models (kubernetes==32.0.1), whose attribute maps list every
  JSON field of v1.32: the table must know each of them.
A small encoder written from the table, emitting fields the way gogo-protobuf does, must
re-create every captured body byte for byte from the decoded JSON.
"""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import kubernetes.client
import orjson
import pytest

from netd.api.errors import BadRequest
from netd.apiserver import protobuf
from netd.apiserver.proto_fields import KINDS, MAP, MESSAGES, OPT, REP

FIXTURES = Path(__file__).parent / "fixtures" / "protobuf"
SCALARS = {"string", "bytes", "bool", "int32", "int64"}


# --- wire-level helpers for hand-assembled bodies -------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def vi(num: int, n: int) -> bytes:
    return varint(num << 3) + varint(n)


def ld(num: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(num << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    return b"k8s\x00" + ld(1, ld(1, api_version) + ld(2, kind)) + ld(2, raw) + ld(3, "") + ld(4, "")


# --- a gogo-style encoder written from the table --------------------------------------------

def _zero(typ: str) -> Any:
    return {"string": "", "bytes": "", "bool": False, "int32": 0, "int64": 0}[typ]


def _enc_scalar(num: int, typ: str, value: Any) -> bytes:
    if typ == "string":
        return ld(num, value)
    if typ == "bytes":
        return ld(num, base64.b64decode(value))
    return vi(num, int(value))


def _enc_special(message: str, value: Any) -> bytes | None:
    if message in ("meta.v1.Time", "meta.v1.MicroTime"):
        if value is None:
            return b""
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return vi(1, int(t.replace(microsecond=0).timestamp())) + vi(2, t.microsecond * 1000)
    if message == "resource.Quantity":
        return ld(1, value)
    if message == "intstr.IntOrString":
        if isinstance(value, str):
            return vi(1, 1) + vi(2, 0) + ld(3, value)
        return vi(1, 0) + vi(2, value) + ld(3, "")
    if message in ("runtime.RawExtension", "meta.v1.FieldsV1"):
        return b"" if value is None else ld(1, orjson.dumps(value))
    return None


def encode_message(message: str, obj: Any) -> bytes:
    """Write `obj` as gogo-protobuf writes the Go struct: every field in number order,
    non-pointer scalars and structs always (zero when absent), pointers when set."""
    special = _enc_special(message, obj)
    if special is not None:
        return special
    model = _client_model(message)
    known_to_kubectl = set(model.attribute_map.values()) if model is not None else None
    out = b""
    for num in sorted(MESSAGES[message]):
        name, typ, card, flags = MESSAGES[message][num]
        if "i" in flags:
            out += ld(num, encode_message(typ, obj))
            continue
        if known_to_kubectl is not None and name not in known_to_kubectl and name not in obj:
            # A field newer than 1.32 (the table is a superset): kubectl 1.32 never writes it.
            continue
        present = name in obj and obj[name] is not None
        value = obj.get(name)
        if card == REP:
            for item in value or []:
                out += _enc_scalar(num, typ, item) if typ in SCALARS else \
                    ld(num, encode_message(typ, item))
        elif card == MAP:
            for key in sorted(value or {}):
                item = value[key]
                entry = ld(1, key) + (_enc_scalar(2, typ, item) if typ in SCALARS
                                      else ld(2, encode_message(typ, item)))
                out += ld(num, entry)
        elif typ in SCALARS:
            if present or "p" not in flags:
                out += _enc_scalar(num, typ, value if present else _zero(typ))
        elif present or "p" not in flags:
            if typ in ("meta.v1.Time", "meta.v1.MicroTime", "resource.Quantity",
                       "intstr.IntOrString", "runtime.RawExtension", "meta.v1.FieldsV1"):
                zero: Any = {"resource.Quantity": "0", "intstr.IntOrString": 0}.get(typ)
                out += ld(num, encode_message(typ, value if name in obj else zero))
            else:
                out += ld(num, encode_message(typ, value if present else {}))
    return out


def encode(obj: dict[str, Any]) -> bytes:
    message = KINDS[(obj["apiVersion"], obj["kind"])]
    return envelope(obj["apiVersion"], obj["kind"], encode_message(message, obj))


# --- captured kubectl bodies ----------------------------------------------------------------

# fixture name -> the kubectl 1.32 command that sent it
CAPTURED = {
    "configmap": "create configmap x --from-literal=a=b",
    "configmap-files": "create configmap files --from-file=blob=<binary> --from-file=text.txt "
                       "--from-literal=z=1",
    "namespace": "create namespace n",
    "deployment": "create deployment d --image=nginx --replicas=2 --port=80",
    "deployment-multi": "create deployment d2 --image=nginx --image=busybox:1.36 --replicas=0 "
                        "--port=8080",
    "deployment-cmd": "create deployment d4 --image=busybox -- sleep 3600",
    "service": "create service clusterip s --tcp=80:8080",
    "service-headless": "create service clusterip hl --clusterip=None --tcp=53:53",
    "service-nodeport": "create service nodeport np --tcp=80:8080 --node-port=30080",
    "service-externalname": "create service externalname en --external-name=example.com",
    "secret": "create secret generic sec --from-literal=k=v --from-literal=empty= --type=Opaque",
    "pod-debug-node": "debug node/n1 --image=busybox -- sleep 10",
    "pod-debug-copy": "debug p --copy-to=p-copy --image=busybox --share-processes "
                      "--container=dbg -- sleep 5",
}
WITH_DRY_RUN_JSON = sorted(n for n in CAPTURED if (FIXTURES / f"{n}.json").exists())


def _capture(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def test_every_fixture_is_listed() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.bin")) == sorted(CAPTURED)
    assert len(WITH_DRY_RUN_JSON) == 11


@pytest.mark.parametrize("name", WITH_DRY_RUN_JSON)
def test_captured_body_equals_kubectl_json(name: str) -> None:
    expected = orjson.loads((FIXTURES / f"{name}.json").read_bytes())
    got = protobuf.decode(_capture(name))
    assert got == expected
    # Same key order too: the table lists fields in Go declaration order.
    assert orjson.dumps(got) == orjson.dumps(expected)


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_reencoding_the_decoded_object_restores_kubectl_bytes(name: str) -> None:
    body = _capture(name)
    assert encode(protobuf.decode(body)) == body


def test_debug_node_pod_fields() -> None:
    pod = protobuf.decode(_capture("pod-debug-node"))
    spec = pod["spec"]
    assert pod["metadata"] == {"name": pod["metadata"]["name"], "creationTimestamp": None}
    assert spec["volumes"] == [{"name": "host-root", "hostPath": {"path": "/"}}]  # inlined
    assert (spec["nodeName"], spec["hostNetwork"], spec["hostPID"], spec["hostIPC"]) == \
        ("n1", True, True, True)
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["containers"][0]["command"] == ["sleep", "10"]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "host-root", "mountPath": "/host"}]
    assert pod["status"] == {}


def test_debug_copy_pod_fields() -> None:
    pod = protobuf.decode(_capture("pod-debug-copy"))
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["p", "dbg"]
    assert spec["shareProcessNamespace"] is True
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["securityContext"] == {}
    assert spec["tolerations"][0] == {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 300}


# --- hand-assembled bodies ------------------------------------------------------------------

META_XY = ld(1, "x") + ld(3, "ns")


def _obj(api_version: str, kind: str, raw: bytes) -> dict[str, Any]:
    return protobuf.decode(envelope(api_version, kind, raw))


HAND_CASES: list[tuple[str, str, str, bytes, dict[str, Any]]] = [
    ("configmap-labels-map", "v1", "ConfigMap",
     ld(1, ld(1, "x") + ld(11, ld(1, "b") + ld(2, "2")) + ld(11, ld(1, "a") + ld(2, "1")))
     + ld(2, ld(1, "k") + ld(2, "v")),
     {"metadata": {"name": "x", "labels": {"b": "2", "a": "1"}}, "data": {"k": "v"}}),
    ("map-entry-without-value", "v1", "ConfigMap", ld(2, ld(1, "k")),
     {"data": {"k": ""}}),
    ("binary-data-base64", "v1", "ConfigMap", ld(3, ld(1, "b") + ld(2, b"\x00\xff")),
     {"binaryData": {"b": "AP8="}}),
    ("time-seconds", "v1", "Namespace",
     ld(1, ld(1, "n") + ld(8, vi(1, 1700000000) + vi(2, 999))),
     {"metadata": {"name": "n", "creationTimestamp": "2023-11-14T22:13:20Z"}}),
    ("time-empty-is-null", "v1", "Namespace", ld(1, ld(8, b"")),
     {"metadata": {"creationTimestamp": None}}),
    ("time-go-zero-is-null", "v1", "Namespace", ld(1, ld(8, vi(1, -62135596800))),
     {"metadata": {"creationTimestamp": None}}),
    ("micro-time", "coordination.k8s.io/v1", "Lease",
     ld(2, ld(1, "me") + vi(2, 15) + ld(3, vi(1, 1700000000) + vi(2, 123456789))),
     {"spec": {"holderIdentity": "me", "leaseDurationSeconds": 15,
               "acquireTime": "2023-11-14T22:13:20.123456Z"}}),
    ("pointer-zero-kept", "apps/v1", "Deployment", ld(2, vi(1, 0) + vi(7, 0)),
     {"spec": {"replicas": 0}}),
    ("omitempty-zero-dropped", "apps/v1", "Deployment", ld(2, vi(5, 0) + vi(7, 0)),
     {"spec": {}}),
    ("non-omitempty-zero-kept", "v1", "Service", ld(2, ld(1, ld(1, "") + vi(3, 0))),
     {"spec": {"ports": [{"port": 0}]}}),
    ("absent-fields-stay-absent", "discovery.k8s.io/v1", "EndpointSlice", ld(1, ld(1, "s")),
     {"metadata": {"name": "s"}}),
    ("negative-int32-ten-byte-varint", "v1", "Pod",
     ld(2, ld(2, ld(1, "c") + ld(6, vi(3, -1)))),
     {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": -1}]}]}}),
    ("nested-repeated-messages", "v1", "Pod",
     ld(2, ld(2, ld(1, "a") + ld(6, vi(3, 80)) + ld(6, vi(3, 81) + ld(4, "TCP")))
        + ld(2, ld(1, "b") + ld(3, "sh") + ld(3, "-c"))),
     {"spec": {"containers": [
         {"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 81, "protocol": "TCP"}]},
         {"name": "b", "command": ["sh", "-c"]}]}}),
    ("intorstring-int", "v1", "Service",
     ld(2, ld(1, vi(3, 80) + ld(4, vi(1, 0) + vi(2, 8080) + ld(3, "")))),
     {"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
    ("intorstring-string", "v1", "Service",
     ld(2, ld(1, vi(3, 80) + ld(4, vi(1, 1) + vi(2, 0) + ld(3, "http")))),
     {"spec": {"ports": [{"port": 80, "targetPort": "http"}]}}),
    ("intorstring-empty-is-zero", "v1", "Service", ld(2, ld(1, ld(4, b""))),
     {"spec": {"ports": [{"targetPort": 0}]}}),
    ("quantity-map-canonical", "v1", "Pod",
     ld(2, ld(2, ld(8, ld(2, ld(1, "cpu") + ld(2, ld(1, "0.5")))
                      + ld(1, ld(1, "memory") + ld(2, ld(1, "1024Mi")))))),
     {"spec": {"containers": [{"resources": {"limits": {"memory": "1Gi"},
                                             "requests": {"cpu": "500m"}}}]}}),
    ("quantity-empty-is-zero", "v1", "Pod",
     ld(2, ld(1, ld(1, "v") + ld(2, ld(2, ld(2, b""))))),
     {"spec": {"volumes": [{"name": "v", "emptyDir": {"sizeLimit": "0"}}]}}),
    ("inline-volume-source", "v1", "Pod",
     ld(2, ld(1, ld(1, "h") + ld(2, ld(1, ld(1, "/data") + ld(2, "Directory"))))),
     {"spec": {"volumes": [{"name": "h", "hostPath": {"path": "/data", "type": "Directory"}}]}}),
    ("inline-probe-handler", "v1", "Pod",
     ld(2, ld(2, ld(10, ld(1, ld(1, ld(1, "true"))) + vi(2, 3)))),
     {"spec": {"containers": [{"livenessProbe": {"exec": {"command": ["true"]},
                                                 "initialDelaySeconds": 3}}]}}),
    ("inline-local-object-reference", "v1", "Pod",
     ld(2, ld(2, ld(7, ld(1, "E") + ld(3, ld(3, ld(1, ld(1, "cm")) + ld(2, "key")))))),
     {"spec": {"containers": [{"env": [{"name": "E", "valueFrom": {
         "configMapKeyRef": {"name": "cm", "key": "key"}}}]}]}}),
    ("repeated-string-deep", "v1", "Pod",
     ld(2, ld(2, ld(15, ld(1, ld(1, "x"))))),
     {"spec": {"containers": [{"securityContext": {"capabilities": {"add": ["x"]}}}]}}),
    ("secret-bytes-and-string-data", "v1", "Secret",
     ld(2, ld(1, "k") + ld(2, b"v")) + ld(3, "Opaque") + ld(4, ld(1, "s") + ld(2, "t")),
     {"data": {"k": "dg=="}, "type": "Opaque", "stringData": {"s": "t"}}),
    ("managed-fields-fieldsv1-json", "v1", "ConfigMap",
     ld(1, ld(17, ld(1, "kubectl") + ld(2, "Update") + ld(6, "FieldsV1")
              + ld(7, ld(1, b'{"f:data":{}}')))),
     {"metadata": {"managedFields": [{"manager": "kubectl", "operation": "Update",
                                      "fieldsType": "FieldsV1",
                                      "fieldsV1": {"f:data": {}}}]}}),
    ("raw-extension-json", "apps/v1", "ControllerRevision",
     ld(2, ld(1, b'{"spec":{"a":1}}')) + vi(3, 4),
     {"data": {"spec": {"a": 1}}, "revision": 4}),
    ("raw-extension-absent-is-null", "apps/v1", "ControllerRevision", ld(2, b"") + vi(3, 1),
     {"data": None, "revision": 1}),
    ("message-field-twice-merges", "v1", "ConfigMap",
     ld(1, ld(1, "x")) + ld(1, ld(3, "ns")),
     {"metadata": {"name": "x", "namespace": "ns"}}),
    ("eviction-delete-options", "policy/v1", "Eviction",
     ld(1, META_XY + ld(8, b"")) + ld(2, vi(1, 7) + ld(5, "All")),
     {"metadata": {"name": "x", "namespace": "ns", "creationTimestamp": None},
      "deleteOptions": {"gracePeriodSeconds": 7, "dryRun": ["All"]}}),
    ("scale", "autoscaling/v1", "Scale", ld(1, META_XY) + ld(2, vi(1, 3)),
     {"metadata": {"name": "x", "namespace": "ns"}, "spec": {"replicas": 3}}),
    ("delete-options-any-group", "apps/v1", "DeleteOptions",
     vi(1, 0) + ld(4, "Foreground"),
     {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground"}),
    ("utf8-text", "v1", "ConfigMap", ld(2, ld(1, "k") + ld(2, "h\xe9\u2603".encode())),
     {"data": {"k": "hé☃"}}),
    ("invalid-utf8-replaced", "v1", "ConfigMap", ld(2, ld(1, "k") + ld(2, b"a\xffb")),
     {"data": {"k": "a\ufffdb"}}),
]


@pytest.mark.parametrize("api_version,kind,raw,expected",
                         [c[1:] for c in HAND_CASES], ids=[c[0] for c in HAND_CASES])
def test_hand_assembled(api_version: str, kind: str, raw: bytes,
                        expected: dict[str, Any]) -> None:
    got = _obj(api_version, kind, raw)
    assert got == {"kind": kind, "apiVersion": api_version, **expected}


def test_packed_repeated_varints_are_accepted() -> None:
    # PodSecurityContext.supplementalGroups (4, repeated int64) packed and unpacked.
    packed = ld(2, ld(14, ld(4, varint(1) + varint(2)) + vi(4, 3)))
    got = _obj("v1", "Pod", packed)
    assert got["spec"]["securityContext"] == {"supplementalGroups": [1, 2, 3]}


def test_envelope_defaults_and_nested_protobuf_raw_extension() -> None:
    body = b"k8s\x00" + ld(1, b"") + ld(2, ld(1, ld(1, "x")))
    assert protobuf.decode(body, api_version="v1", kind="ConfigMap") == \
        {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}}
    inner = envelope("v1", "ConfigMap", ld(2, ld(1, "k") + ld(2, "v")))
    got = _obj("apps/v1", "ControllerRevision", ld(2, ld(1, inner)))
    assert got["data"] == {"kind": "ConfigMap", "apiVersion": "v1", "data": {"k": "v"}}


def test_decode_message_and_full_name() -> None:
    assert protobuf.decode_message(ld(1, "InternalIP") + ld(2, "1.2.3.4"),
                                   "core.v1.NodeAddress") == {"type": "InternalIP",
                                                              "address": "1.2.3.4"}
    assert protobuf.full_name("core.v1.Pod") == "k8s.io.api.core.v1.Pod"
    assert protobuf.full_name("meta.v1.ObjectMeta.LabelsEntry") == \
        "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta.LabelsEntry"


def test_encoder_and_decoder_agree_on_a_rich_pod() -> None:
    pod = {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": "default", "uid": "u-1",
                     "creationTimestamp": "2024-02-29T12:00:00Z", "labels": {"app": "web"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": "rs", "uid": "u-2", "controller": True}]},
        "spec": {
            "containers": [{"name": "c", "image": "nginx", "resources": {},
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "readinessProbe": {"httpGet": {"path": "/", "port": "http"},
                                               "periodSeconds": 5},
                            "securityContext": {"runAsNonRoot": False, "runAsUser": 0}}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "zone", "operator": "In", "values": ["a", "b"]}]}]}}},
            "volumes": [{"name": "cfg", "configMap": {"name": "cm", "defaultMode": 420}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
            "dnsConfig": {"options": [{"name": "ndots", "value": "2"}]},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                                           "whenUnsatisfiable": "DoNotSchedule"}],
        },
        "status": {"phase": "Running", "podIP": "10.244.0.5",
                   "podIPs": [{"ip": "10.244.0.5"}], "startTime": "2024-02-29T12:00:01Z",
                   "conditions": [{"type": "Ready", "status": "True",
                                   "lastProbeTime": None,
                                   "lastTransitionTime": "2024-02-29T12:00:02Z"}]},
    }
    assert protobuf.decode(encode(pod)) == pod


# --- errors ---------------------------------------------------------------------------------

ERROR_CASES: list[tuple[str, bytes, str]] = [
    ("no-magic", b'{"kind":"ConfigMap"}', "does not appear to be a protobuf message"),
    ("magic-only", b"k8s\x00", "empty body"),
    ("unknown-kind", envelope("v1", "Frobnicator", b""), "no kind 'Frobnicator'"),
    ("unserved-version", envelope("apps/v1beta1", "Deployment", b""), "apps/v1beta1"),
    ("missing-kind", b"k8s\x00" + ld(1, ld(1, "v1")) + ld(2, b""), "'Kind' is missing"),
    ("missing-version", b"k8s\x00" + ld(1, ld(2, "Pod")) + ld(2, b""), "'apiVersion' is missing"),
    ("unknown-field-names-message-and-number", envelope("v1", "ConfigMap", vi(99, 1)),
     "k8s.io.api.core.v1.ConfigMap has unknown field 99"),
    ("unknown-nested-field", envelope("v1", "Pod", ld(2, ld(2, vi(250, 1)))),
     "k8s.io.api.core.v1.Container has unknown field 250"),
    ("unknown-envelope-field", b"k8s\x00" + vi(9, 1), "runtime.Unknown has unknown field 9"),
    ("unknown-map-entry-field", envelope("v1", "ConfigMap", ld(2, vi(3, 1))),
     "ConfigMap.DataEntry has unknown field 3"),
    ("truncated-varint", envelope("v1", "ConfigMap", b"") + b"\x08\x80", "truncated"),
    ("truncated-length", envelope("v1", "ConfigMap", ld(1, ld(1, "x"))[:-1]), "truncated"),
    ("overlong-varint", envelope("v1", "ConfigMap", b"\x08" + b"\xff" * 11 + b"\x01"),
     "overlong varint"),
    ("field-number-zero", envelope("v1", "ConfigMap", b"\x00\x00"), "illegal field number 0"),
    ("group-wire-type", envelope("v1", "ConfigMap", b"\x0b"), "unsupported wire type 3"),
    ("varint-where-message", envelope("v1", "ConfigMap", vi(1, 5)),
     "length-delimited data was expected"),
    ("bytes-where-varint", envelope("apps/v1", "Deployment", ld(2, ld(1, "x"))),
     "a varint was expected"),
    ("bad-quantity",
     envelope("v1", "Pod", ld(2, ld(1, ld(1, "v") + ld(2, ld(2, ld(2, ld(1, "lots"))))))),
     "quantity 'lots'"),
    ("bad-intorstring-type", envelope("v1", "Service", ld(2, ld(1, ld(4, vi(1, 2))))),
     "impossible IntOrString.Type 2"),
    ("raw-extension-not-json", envelope("apps/v1", "ControllerRevision", ld(2, ld(1, b"{nope"))),
     "does not hold JSON"),
    ("time-out-of-range", envelope("v1", "Namespace", ld(1, ld(8, vi(1, 1 << 40)))),
     "time out of range"),
]


@pytest.mark.parametrize("body,message", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_malformed_bodies_are_bad_requests(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as info:
        protobuf.decode(body)
    assert message in str(info.value)
    assert info.value.code == 400


def test_raw_extension_nesting_is_bounded() -> None:
    body = envelope("v1", "ConfigMap", b"")
    for _ in range(12):
        body = envelope("apps/v1", "ControllerRevision", ld(2, ld(1, body)))
    with pytest.raises(BadRequest, match="nested too deeply"):
        protobuf.decode(body)


# --- the table ------------------------------------------------------------------------------

def test_table_is_closed_and_well_formed() -> None:
    for message, fields in MESSAGES.items():
        flat: list[str] = []
        for num, (name, typ, card, flags) in fields.items():
            assert num > 0 and card in (OPT, REP, MAP), (message, num)
            assert typ in SCALARS or typ in MESSAGES, (message, num, typ)
            assert ("i" in flags) == (name == ""), (message, num)
            flat.extend(_json_names(typ) if "i" in flags else [name])
        assert len(flat) == len(set(flat)), message
    assert set(KINDS.values()) <= set(MESSAGES)


# Field numbers read off the .proto files, checked here by hand.
KNOWN_NUMBERS = [
    ("meta.v1.ObjectMeta", 11, "labels"), ("meta.v1.ObjectMeta", 17, "managedFields"),
    ("meta.v1.ObjectMeta", 8, "creationTimestamp"), ("core.v1.Pod", 2, "spec"),
    ("core.v1.PodSpec", 2, "containers"), ("core.v1.PodSpec", 10, "nodeName"),
    ("core.v1.PodSpec", 20, "initContainers"), ("core.v1.Container", 2, "image"),
    ("core.v1.Container", 22, "startupProbe"), ("core.v1.ServicePort", 4, "targetPort"),
    ("core.v1.ServiceSpec", 3, "clusterIP"), ("apps.v1.DeploymentSpec", 3, "template"),
    ("discovery.v1.EndpointSlice", 4, "addressType"), ("coordination.v1.LeaseSpec", 4,
                                                       "renewTime"),
    ("storage.v1.StorageClass", 2, "provisioner"), ("core.v1.ConfigMap", 3, "binaryData"),
]


@pytest.mark.parametrize("message,num,name", KNOWN_NUMBERS,
                         ids=[f"{m}.{n}" for m, _, n in KNOWN_NUMBERS])
def test_known_field_numbers(message: str, num: int, name: str) -> None:
    assert MESSAGES[message][num][0] == name


def _json_names(message: str) -> list[str]:
    names: list[str] = []
    for name, typ, _, flags in MESSAGES[message].values():
        names.extend(_json_names(typ) if "i" in flags else [name])
    return names


def _client_model(message: str) -> Any:
    group, _, name = message.rpartition(".")
    prefix = "".join(p.capitalize() for p in group.split("."))  # core.v1 -> CoreV1
    for candidate in (f"{prefix}{name}", f"V1{name}"):
        model = getattr(kubernetes.client, candidate, None)
        if model is not None and hasattr(model, "attribute_map"):
            return model
    return None


CLIENT_MODELS = sorted(m for m in MESSAGES if _client_model(m) is not None)


def test_most_messages_have_a_client_model() -> None:
    assert len(CLIENT_MODELS) >= 200


@pytest.mark.parametrize("message", CLIENT_MODELS)
def test_table_knows_every_json_field_of_kubectl_1_32(message: str) -> None:
    model = _client_model(message)
    wanted = set(model.attribute_map.values()) - {"apiVersion", "kind"}
    assert wanted <= set(_json_names(message))
