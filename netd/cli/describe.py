"""`netd describe` text: kubectl's describers (k8s.io/kubectl pkg/describe) over
plain object dicts.

Each section is written the way kubectl's PrefixWriter writes it (two spaces per
level, tab-separated label and value) and the whole text goes through the same
tabwriter settings (minwidth 0, padding 2), so labels align in the same blocks as
kubectl's output. Pure: every related object (events, pods, replica sets …) and the
clock are passed in; netd.cli.commands fetches them. Workload and node describers
live in netd.cli.describe_kinds.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from netd.api.printers.common import (
    as_dict, as_int, as_list, as_str, get, parse_time, since,
)
from netd.cli.printing import DESCRIBE_MINWIDTH, DESCRIBE_PADDING, TabWriter, escape_terminal

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_ANNOTATION_LEN = 140


class Writer:
    """kubectl's PrefixWriter into a tabwriter; flush() ends a column-block scope."""

    def __init__(self) -> None:
        self._chunks: list[list[str]] = [[]]

    def write(self, level: int, text: str) -> None:
        self._chunks[-1].append(escape_terminal("  " * level + text))

    def line(self, text: str) -> None:
        """WriteLine: the value completing a `Title:\\t` already written."""
        self._chunks[-1].append(escape_terminal(text) + "\n")

    def flush(self) -> None:
        self._chunks.append([])

    def text(self) -> str:
        tw = TabWriter(DESCRIBE_MINWIDTH, DESCRIBE_PADDING)
        return "".join(tw.format("".join(chunk)) for chunk in self._chunks if chunk)


# --------------------------------------------------------------------- formatting


def rfc1123z(value: Any) -> str:
    """time.RFC1123Z in the local zone, as kubectl prints timestamps; Go's zero time
    when unset."""
    when = parse_time(value)
    if when is None:
        return "Mon, 01 Jan 0001 00:00:00 +0000"
    return when.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")


def go_value(value: Any) -> str:
    """fmt's %v for decoded JSON values."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def int_or_string(value: Any) -> str:
    return go_value(value) if value is not None else ""


def labels_multiline(w: Writer, title: str, labels: Any, indent: str = "",
                     inner: str = "\t") -> None:
    """printLabelsMultilineWithIndent."""
    w.write(0, f"{indent}{title}:{inner}")
    items = as_dict(labels)
    if not items:
        w.line("<none>")
        return
    for i, key in enumerate(sorted(items)):
        prefix = "" if i == 0 else indent + inner
        w.write(0, f"{prefix}{key}={go_value(items[key])}\n")


def annotations_multiline(w: Writer, title: str, annotations: Any) -> None:
    """printAnnotationsMultiline: last-applied hidden, long values shortened."""
    w.write(0, f"{title}:\t")
    items = {k: v for k, v in as_dict(annotations).items() if k != LAST_APPLIED}
    if not items:
        w.line("<none>")
        return
    for i, key in enumerate(sorted(items)):
        if i:
            w.write(0, "\t")
        value = str(items[key]).removesuffix("\n")
        if len(value) + len(key) + 2 > MAX_ANNOTATION_LEN or "\n" in value:
            w.write(0, f"{key}:\n")
            for part in value.split("\n"):
                short = part if len(part) <= MAX_ANNOTATION_LEN - 2 else \
                    part[:MAX_ANNOTATION_LEN - 2] + "..."
                w.write(0, f"\t  {short}\n")
        else:
            w.write(0, f"{key}: {value}\n")


def tolerations_multiline(w: Writer, title: str, tolerations: Any, indent: str = "") -> None:
    w.write(0, f"{indent}{title}:\t")
    items = [as_dict(t) for t in as_list(tolerations)]
    if not items:
        w.line("<none>")
        return
    for i, t in enumerate(sorted(items, key=lambda t: as_str(t.get("key")))):
        text = ("" if i == 0 else indent + "\t") + as_str(t.get("key"))
        if t.get("value"):
            text += f"={t['value']}"
        if t.get("effect"):
            text += f":{t['effect']}"
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists" if (t.get("key") or t.get("effect")) else "op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {go_value(t['tolerationSeconds'])}s"
        w.write(0, text + "\n")


def controller_of(obj: dict[str, Any]) -> str:
    for ref in as_list(get(obj, "metadata", "ownerReferences")):
        if as_dict(ref).get("controller"):
            return f"{ref.get('kind', '')}/{ref.get('name', '')}"
    return ""


# ------------------------------------------------------------------------- events


def event_interval(ev: dict[str, Any], now: datetime) -> str:
    first = since(ev.get("eventTime"), now) if ev.get("eventTime") else \
        since(ev.get("firstTimestamp"), now)
    series = as_dict(ev.get("series"))
    if series:
        return (f"{since(series.get('lastObservedTime'), now)} "
                f"(x{as_int(series.get('count'))} over {first})")
    if as_int(ev.get("count")) > 1:
        return f"{since(ev.get('lastTimestamp'), now)} (x{ev['count']} over {first})"
    return first


def _event_key(ev: dict[str, Any]) -> datetime:
    return parse_time(ev.get("lastTimestamp")) or datetime.min.replace(tzinfo=timezone.utc)


def describe_events(w: Writer, events: list[dict[str, Any]] | None, now: datetime) -> None:
    """DescribeEvents; None (the events could not be read) prints nothing."""
    if events is None:
        return
    if not events:
        w.write(0, "Events:\t<none>\n")
        return
    w.flush()
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n")
    w.write(1, "----\t------\t----\t----\t-------\n")
    for ev in sorted(events, key=_event_key):
        source = as_str(get(ev, "source", "component")) or as_str(ev.get("reportingController"))
        message = as_str(ev.get("message")).strip()
        path = as_str(get(ev, "involvedObject", "fieldPath"))
        if path:
            message = f"{path}: {message}"
        w.write(1, f"{as_str(ev.get('type'))}\t{as_str(ev.get('reason'))}\t"
                   f"{event_interval(ev, now)}\t{source}\t{message}\n")


# ------------------------------------------------------------------------ generic

_CAMEL_RUN = re.compile(r"[a-z]+|[A-Z]+|[0-9]+|[^a-zA-Z0-9]+")
_ACRONYMS = ("API", "URL", "UID", "GUID")


def _camel_split(word: str) -> list[str]:
    """github.com/fatih/camelcase.Split: runs of one character class, with the last
    capital of an upper run moved onto a following lower-case run (HTTPServer)."""
    runs = _CAMEL_RUN.findall(word)
    for i in range(len(runs) - 1):
        if runs[i].isupper() and runs[i + 1].islower() and runs[i + 1].isalpha():
            runs[i + 1] = runs[i][-1] + runs[i + 1]
            runs[i] = runs[i][:-1]
    return [r for r in runs if r]


def smart_label(name: str) -> str:
    """kubectl's smartLabelFor: `apiVersion` → `API Version`, `clusterIP` → `Cluster IP`."""
    if any(not (ch.isalpha() or ch == "-") for ch in name):
        return name
    parts = _camel_split(name)
    merged: list[str] = []
    i = 0
    while i < len(parts):
        part = parts[i]
        if i + 1 < len(parts) and len(part) >= 2 and part.isupper() and parts[i + 1][:1].isupper():
            merged.append(part + parts[i + 1])
            i += 2
            continue
        merged.append(part)
        i += 1
    out = []
    for part in merged:
        if part == "_":
            continue
        if part.upper() in _ACRONYMS:
            part = part.upper()
        elif part.lower() == part:
            part = part.title()
        out.append(part)
    return " ".join(out)


_GENERIC_SKIP = (".metadata.managedFields", ".metadata.name", ".metadata.namespace",
                 ".metadata.labels", ".metadata.annotations")


def unstructured(w: Writer, level: int, content: dict[str, Any], prefix: str = "") -> None:
    """printUnstructuredContent: every field, sorted, nested by indentation."""
    for key in sorted(content):
        value = content[key]
        path = f"{prefix}.{key}"
        if path in _GENERIC_SKIP:
            continue
        if isinstance(value, dict):
            w.write(level, f"{smart_label(key)}:\n")
            unstructured(w, level + 1, value, path)
        elif isinstance(value, list):
            w.write(level, f"{smart_label(key)}:\n")
            for child in value:
                if isinstance(child, dict):
                    unstructured(w, level + 1, child, path)
                else:
                    w.write(level + 1, f"{go_value(child)}\n")
        else:
            w.write(level, f"{smart_label(key)}:\t{go_value(value)}\n")


def describe_generic(obj: dict[str, Any], events: list[dict[str, Any]] | None,
                     now: datetime) -> str:
    w = Writer()
    meta = as_dict(obj.get("metadata"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Namespace:\t{as_str(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    unstructured(w, 0, obj)
    describe_events(w, events, now)
    return w.text()


def describe_config_map(cm: dict[str, Any], events: list[dict[str, Any]] | None,
                        now: datetime) -> str:
    w = Writer()
    meta = as_dict(cm.get("metadata"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    w.write(0, f"Namespace:\t{as_str(meta.get('namespace'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, "\nData\n====\n")
    data = as_dict(cm.get("data"))
    for key in sorted(data):
        w.write(0, f"{key}:\n----\n{go_value(data[key])}\n\n")
    w.write(0, "\nBinaryData\n====\n")
    binary = as_dict(cm.get("binaryData"))
    for key in sorted(binary):
        w.write(0, f"{key}: {_decoded_len(binary[key])} bytes\n")
    w.write(0, "\n")
    describe_events(w, events, now)
    return w.text()


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=False))
    except (ValueError, binascii.Error):
        return 0


def describe_namespace(ns: dict[str, Any], events: list[dict[str, Any]] | None = None,
                       now: datetime | None = None) -> str:
    # netd serves no ResourceQuota or LimitRange, which kubectl treats as "not
    # supported by the server" and leaves those sections out.
    w = Writer()
    meta = as_dict(ns.get("metadata"))
    w.write(0, f"Name:\t{as_str(meta.get('name'))}\n")
    labels_multiline(w, "Labels", meta.get("labels"))
    annotations_multiline(w, "Annotations", meta.get("annotations"))
    w.write(0, f"Status:\t{as_str(get(ns, 'status', 'phase'))}\n")
    conditions = as_list(get(ns, "status", "conditions"))
    if conditions:
        w.write(0, "Conditions:\n")
        w.write(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n")
        w.write(1, "----\t------\t------------------\t------\t-------\n")
        for c in map(as_dict, conditions):
            w.write(1, f"{as_str(c.get('type'))}\t{as_str(c.get('status'))}\t"
                       f"{rfc1123z(c.get('lastTransitionTime'))}\t{as_str(c.get('reason'))}\t"
                       f"{as_str(c.get('message'))}\n")
    return w.text()


@dataclass
class Related:
    """Everything a describer may need besides the object itself."""

    events: list[dict[str, Any]] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    endpoint_slices: list[dict[str, Any]] = field(default_factory=list)
    replica_sets: list[dict[str, Any]] = field(default_factory=list)
    lease: dict[str, Any] | None = None
    lease_error: str = ""


Describer = Callable[[dict[str, Any], Related, datetime], str]
