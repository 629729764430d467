"""Shared pieces of the Table printers: the Printer record, column builders, and the
formatting helpers kube-apiserver's printers use (HumanDuration, label and selector
strings, container layout).

Every helper reproduces the Go function named in its docstring so that a cell netd
prints is byte-for-byte the cell a real cluster prints. Pure: no I/O, no clock (callers
pass `now`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from netd.api.printers import descriptions as d

Cells = list[Any]
CellFunc = Callable[[dict[str, Any], datetime], Cells]
ConditionFunc = Callable[[dict[str, Any]], list[dict[str, Any]]]

NONE = "<none>"
UNKNOWN = "<unknown>"
UNSET = "<unset>"


@dataclass(frozen=True)
class Column:
    """One meta.k8s.io/v1 TableColumnDefinition."""

    name: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""

    def as_dict(self) -> dict[str, Any]:
        # kube-apiserver serialises every field (no omitempty), so empty strings stay.
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


@dataclass(frozen=True)
class Printer:
    """Columns plus the function that fills one row's cells (always the -o wide set:
    the apiserver generates wide rows and kubectl hides priority>0 columns itself)."""

    columns: tuple[Column, ...]
    cells: CellFunc
    conditions: ConditionFunc | None = field(default=None)


def name_column() -> Column:
    return Column("Name", "string", d.META_NAME, 0, "name")


def age_column() -> Column:
    return Column("Age", "string", d.META_CREATED)


def wide(name: str, description: str, type_: str = "string") -> Column:
    return Column(name, type_, description, 1)


# ---------------------------------------------------------------------------- access


def get(obj: Any, *path: str | int) -> Any:
    """Walk dicts and lists; None when any step is missing or of the wrong shape."""
    cur = obj
    for step in path:
        if isinstance(step, int):
            if not isinstance(cur, list) or not -len(cur) <= step < len(cur):
                return None
            cur = cur[step]
        else:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(step)
        if cur is None:
            return None
    return cur


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def as_int(value: Any, default: int = 0) -> int:
    # bool is an int subclass in Python; a JSON true is not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        return default
    return value


def name_of(obj: dict[str, Any]) -> str:
    return as_str(get(obj, "metadata", "name"))


# ---------------------------------------------------------------------------- time


def parse_time(value: Any) -> datetime | None:
    """Parse a metav1.Time / MicroTime (RFC3339, optional fraction, Z or offset)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed


def aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)


def _trunc_div(a: int, b: int) -> int:
    """Go's integer division truncates toward zero; Python's // floors."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def human_duration(delta: timedelta) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration: ~2-3 significant figures."""
    micros = delta // timedelta(microseconds=1)
    seconds = _trunc_div(micros, 1_000_000)
    # Up to 2s in the future is clock skew between machines: shown as "0s", not invalid.
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def since(value: Any, now: datetime) -> str:
    """printers.go translateTimestampSince: "<unknown>" for a zero/missing time."""
    when = value if isinstance(value, datetime) else parse_time(value)
    if when is None:
        return UNKNOWN
    return human_duration(aware(now) - when)


def age(obj: dict[str, Any], now: datetime) -> str:
    return since(get(obj, "metadata", "creationTimestamp"), now)


def rfc3339(value: Any) -> str:
    """metav1.Time.UTC().Format(time.RFC3339); Go's zero time when missing."""
    when = parse_time(value)
    if when is None:
        return "0001-01-01T00:00:00Z"
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------- labels


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted k=v joined by ",", "<none>" when empty."""
    items = as_dict(labels)
    if not items:
        return NONE
    return ",".join(f"{k}={items[k]}" for k in sorted(items))


def selector_string(selector: Any) -> str:
    """metav1.LabelSelectorAsSelector(sel).String(); "" for nil/empty selectors.

    Raises ValueError where LabelSelectorAsSelector returns an error (bad operator,
    In/NotIn without values, Exists with values)."""
    sel = as_dict(selector)
    reqs: list[tuple[str, str]] = []
    for key, value in as_dict(sel.get("matchLabels")).items():
        reqs.append((key, f"{key}={value}"))
    for expr in as_list(sel.get("matchExpressions")):
        expr = as_dict(expr)
        key = as_str(expr.get("key"))
        op = expr.get("operator")
        values = [v for v in as_list(expr.get("values")) if isinstance(v, str)]
        if op in ("In", "NotIn"):
            if not values:
                raise ValueError(f"{op} requires values")
            word = "in" if op == "In" else "notin"
            reqs.append((key, f"{key} {word} ({','.join(sorted(values))})"))
        elif op in ("Exists", "DoesNotExist"):
            if values:
                raise ValueError(f"{op} takes no values")
            reqs.append((key, key if op == "Exists" else f"!{key}"))
        else:
            raise ValueError(f"{op!r} is not a valid label selector operator")
    # labels.Selector.Add keeps requirements sorted by key.
    reqs.sort(key=lambda r: r[0])
    return ",".join(text for _, text in reqs)


def format_label_selector(selector: Any) -> str:
    """metav1.FormatLabelSelector: "<none>" when empty, "<error>" when invalid."""
    try:
        text = selector_string(selector)
    except ValueError:
        return "<error>"
    return text or NONE


def layout_containers(containers: Any) -> tuple[str, str]:
    """printers.go layoutContainerCells: names and images, each joined by ","."""
    items = [as_dict(c) for c in as_list(containers)]
    names = ",".join(as_str(c.get("name")) for c in items)
    images = ",".join(as_str(c.get("image")) for c in items)
    return names, images


def list_with_more(items: list[str], count: int, limit: int = 3, empty: str = UNSET) -> str:
    """printers.go listWithMoreString: first `limit` items then " + N more..."."""
    text = ",".join(items[:limit])
    if count > limit:
        return f"{text} + {count - limit} more..."
    return text or empty


def join_host_port(host: str, port: int) -> str:
    """net.JoinHostPort: brackets around IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
