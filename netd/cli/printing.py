"""kubectl's output formats: the tab-aligned human table, -o name/yaml/json.

People compare `netd get` with `kubectl get` side by side, so the column layout
reproduces Go's text/tabwriter (the algorithm kubectl's printers sit on) rather than
an approximation: column blocks, minimum width, padding, and for watches the
RememberWidths behaviour of github.com/liggitt/tabwriter that kubectl uses so that
rows printed later stay aligned with the header. Pure: strings in, strings out.
"""
from __future__ import annotations

import json
from typing import Any

import yaml

# cli-runtime/pkg/printers/tabwriter.go
GET_MINWIDTH, GET_PADDING = 6, 3
# kubectl describe's tabbedString(): tabwriter.Init(buf, 0, 8, 2, ' ', 0)
DESCRIBE_MINWIDTH, DESCRIBE_PADDING = 0, 2


class TabWriter:
    """Go text/tabwriter with a space pad char and no flags (plus RememberWidths).

    Cells are tab-terminated: the text after a line's last tab is not part of any
    column, and a column block is a run of consecutive lines that have that cell.
    """

    def __init__(self, minwidth: int, padding: int, remember_widths: bool = False) -> None:
        self.minwidth = minwidth
        self.padding = padding
        self.remember = remember_widths
        self._max: list[int] = []

    def format(self, text: str) -> str:
        lines = [line.split("\t") for line in text.split("\n")]
        out: list[str] = []
        self._format(lines, 0, len(lines), [], out)
        return "\n".join(out)

    def _format(self, lines: list[list[str]], line0: int, line1: int, widths: list[int],
                out: list[str]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            self._write(lines, line0, this, widths, out)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + self.padding)
                this += 1
            if self.remember:
                if column < len(self._max):
                    width = max(width, self._max[column])
                    self._max[column] = width
                else:
                    self._max.extend([0] * (column - len(self._max)) + [width])
            self._format(lines, line0, this, widths + [width], out)
            line0 = this
            # Go's loop increments past the line that ended the block; that line has
            # no cell in this column, so skipping its check changes nothing.
            this += 1
        self._write(lines, line0, line1, widths, out)

    @staticmethod
    def _write(lines: list[list[str]], line0: int, line1: int, widths: list[int],
               out: list[str]) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            text = []
            for j, cell in enumerate(cells):
                text.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    text.append(" " * (widths[j] - len(cell)))
            out.append("".join(text))


def tabulate(text: str, minwidth: int = GET_MINWIDTH, padding: int = GET_PADDING) -> str:
    return TabWriter(minwidth, padding).format(text)


def escape_terminal(s: str) -> str:
    """cli-runtime printers.EscapeTerminal: no escape sequences reach the terminal."""
    return s.replace("\x1b", "^[").replace("\r", "\\r")


def go_cell(value: Any) -> str:
    """A cell as fmt.Fprint prints what kubectl decoded from the Table JSON."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return escape_terminal(str(value))


def format_labels(labels: dict[str, Any] | None) -> str:
    """labels.FormatLabels: sorted k=v joined by commas, `<none>` when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


# cli-runtime tableprinter formattedEventType: padded so that watch rows line up.
_EVENT_TYPES = {"ADDED": "ADDED   ", "MODIFIED": "MODIFIED", "DELETED": "DELETED ",
                "ERROR": "ERROR   "}


def _row_meta(row: dict[str, Any]) -> dict[str, Any]:
    obj = row.get("object") or {}
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def table_lines(table: dict[str, Any], *, wide: bool = False, with_namespace: bool = False,
                kind_prefix: str = "", show_labels: bool = False,
                label_columns: list[str] | None = None, headers: bool = True,
                event_type: str = "", columns: list[dict[str, Any]] | None = None
                ) -> list[str]:
    """Tab-separated lines of a meta.k8s.io Table as kubectl's TablePrinter writes them.

    `columns` overrides the table's definitions (watch events after the first carry
    none and reuse the first ones, as kubectl does)."""
    defs = columns if columns is not None else table.get("columnDefinitions") or []
    keep = [i for i, c in enumerate(defs) if wide or int(c.get("priority") or 0) == 0]
    label_columns = label_columns or []
    out: list[str] = []
    if headers:
        head: list[str] = []
        if event_type:
            head.append("EVENT")
        if with_namespace:
            head.append("NAMESPACE")
        head += [str(defs[i].get("name", "")).upper() for i in keep]
        head += [k.rsplit("/", 1)[-1].upper() for k in label_columns]
        if show_labels:
            head.append("LABELS")
        out.append("\t".join(head))
    for row in table.get("rows") or []:
        cells = row.get("cells") or []
        meta = _row_meta(row)
        line: list[str] = []
        if event_type:
            line.append(_EVENT_TYPES.get(event_type, event_type))
        if with_namespace:
            line.append(str(meta.get("namespace") or ""))
        for n, i in enumerate(keep):
            cell = go_cell(cells[i]) if i < len(cells) else ""
            if n == 0 and kind_prefix:
                cell = f"{kind_prefix}/{cell}"
            line.append(cell)
        labels = meta.get("labels") or {}
        line += [str(labels.get(k, "")) for k in label_columns]
        if show_labels:
            line.append(format_labels(labels))
        out.append("\t".join(line))
    return out


def render_table(table: dict[str, Any], **kw: Any) -> str:
    """The whole human-readable output of one Table, newline-terminated."""
    lines = table_lines(table, **kw)
    return tabulate("\n".join(lines) + "\n") if lines else ""


def kind_prefix(kind: str, group: str) -> str:
    """`pod`, `deployment.apps`: how kubectl prefixes names (GroupKind, lower-cased)."""
    return f"{kind}.{group}".lower() if group else kind.lower()


def resource_name(kind: str, group: str, name: str) -> str:
    """-o name: `deployment.apps/web`."""
    return f"{kind_prefix(kind, group)}/{name}"


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """What kubectl prints for several objects with -o yaml/json."""
    return {"apiVersion": "v1", "items": items, "kind": "List",
            "metadata": {"resourceVersion": ""}}


def to_json(obj: Any) -> str:
    # Go's json.MarshalIndent as kubectl uses it: 4 spaces, sorted map keys and
    # HTML-safe escapes (<, >, & only ever occur inside strings, so replacing is safe).
    text = json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            + "\n")


class _Dumper(yaml.SafeDumper):
    pass


_STR = "tag:yaml.org,2002:str"


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # go-yaml (sigs.k8s.io/yaml) writes multi-line strings (the last-applied
    # annotation, scripts) as literal blocks, and strings that would read back as
    # another type ("80", "true", timestamps) double-quoted; PyYAML would use
    # \n escapes and single quotes.
    if "\n" in value:
        return dumper.represent_scalar(_STR, value, style="|")
    if dumper.resolve(yaml.ScalarNode, value, (True, False)) != _STR:
        return dumper.represent_scalar(_STR, value, style='"')
    return dumper.represent_scalar(_STR, value)


_Dumper.add_representer(str, _str_representer)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_Dumper, default_flow_style=False, sort_keys=True,
                     allow_unicode=True)
