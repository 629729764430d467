"""`netd get`: the server's Tables printed like kubectl, -o name/yaml/json, -w."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, TextIO

from netd.api.kinds import ResourceType
from netd.cli.commands_kinds import Selection, UsageError, collection_path, object_path, parse_args
from netd.cli.http import TABLE_ACCEPT, ApiError, Client
from netd.cli.printing import (
    GET_MINWIDTH, GET_PADDING, TabWriter, as_list, kind_prefix, resource_name, table_lines,
    to_json, to_yaml,
)

OUTPUTS = ("wide", "yaml", "json", "name")


@dataclass
class GetContext:
    client: Client
    namespace: str
    all_namespaces: bool
    out: TextIO
    err: TextIO
    errors: list[str] = field(default_factory=list)
    printed: int = 0

    def ns_for(self, rt: ResourceType) -> str | None:
        if not rt.namespaced or self.all_namespaces:
            return None
        return self.namespace


def _query(args: argparse.Namespace) -> dict[str, Any]:
    return {"labelSelector": args.selector or "", "fieldSelector": args.field_selector or ""}


def _complete(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    # List items may come without their type; printed objects always carry it.
    if "kind" not in obj or "apiVersion" not in obj:
        obj = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
    return obj


def _fetch_objects(ctx: GetContext, sel: Selection, args: argparse.Namespace
                   ) -> list[dict[str, Any]]:
    rt = sel.rt
    if sel.names:
        out = []
        for name in sel.names:
            try:
                out.append(_complete(rt, ctx.client.get(
                    object_path(rt, ctx.ns_for(rt) or "", name))))
            except ApiError as err:
                ctx.errors.append(err.kubectl_text())
        return out
    doc = ctx.client.get(collection_path(rt, ctx.ns_for(rt)), _query(args))
    return [_complete(rt, o) for o in (doc or {}).get("items") or []]


def _fetch_table(ctx: GetContext, sel: Selection, args: argparse.Namespace
                 ) -> dict[str, Any] | None:
    rt = sel.rt
    if not sel.names:
        return ctx.client.get(collection_path(rt, ctx.ns_for(rt)), _query(args),
                              accept=TABLE_ACCEPT)
    merged: dict[str, Any] | None = None
    for name in sel.names:
        try:
            table = ctx.client.get(object_path(rt, ctx.ns_for(rt) or "", name),
                                   accept=TABLE_ACCEPT)
        except ApiError as err:
            ctx.errors.append(err.kubectl_text())
            continue
        if merged is None:
            merged = table
        else:
            merged["rows"] = (merged.get("rows") or []) + (table.get("rows") or [])
    return merged


def _no_resources(ctx: GetContext, sels: list[Selection]) -> str:
    # kubectl names the namespace only when every type asked for is namespaced.
    if ctx.all_namespaces or not all(s.rt.namespaced for s in sels):
        return "No resources found"
    return f"No resources found in {ctx.namespace} namespace."


def _human(ctx: GetContext, sels: list[Selection], args: argparse.Namespace,
           with_kind: bool) -> None:
    printed = False
    for sel in sels:
        table = _fetch_table(ctx, sel, args)
        if not table or not table.get("rows"):
            continue
        lines = table_lines(table, wide=args.output == "wide",
                            with_namespace=ctx.all_namespaces and sel.rt.namespaced,
                            kind_prefix=kind_prefix(sel.rt.kind, sel.rt.group) if with_kind
                            else "", show_labels=args.show_labels,
                            label_columns=args.label_columns, headers=not args.no_headers)
        if printed:
            ctx.out.write("\n")     # kubectl separates the tables of different kinds
        ctx.out.write(TabWriter(GET_MINWIDTH, GET_PADDING).format("\n".join(lines) + "\n"))
        printed = True
    if not printed and not any(s.names for s in sels):
        ctx.err.write(_no_resources(ctx, sels) + "\n")


def _structured(ctx: GetContext, sels: list[Selection], args: argparse.Namespace) -> None:
    objects: list[tuple[ResourceType, dict[str, Any]]] = []
    for sel in sels:
        objects += [(sel.rt, o) for o in _fetch_objects(ctx, sel, args)]
    if args.output == "name":
        for rt, obj in objects:
            ctx.out.write(resource_name(rt.kind, rt.group,
                                        (obj.get("metadata") or {}).get("name", "")) + "\n")
    else:
        single = len(sels) == 1 and len(sels[0].names) == 1
        if single and objects:
            doc: Any = objects[0][1]
        elif single:
            doc = None
        else:
            doc = as_list([o for _, o in objects])
        if doc is not None:
            ctx.out.write(to_json(doc) if args.output == "json" else to_yaml(doc))
    if not objects and not any(s.names for s in sels):
        ctx.err.write(_no_resources(ctx, sels) + "\n")


def cmd_get(ctx: GetContext, args: argparse.Namespace) -> int:
    sels = parse_args(args.args)
    if args.output and args.output not in OUTPUTS:
        raise UsageError(f"unable to match a printer suitable for the output format "
                         f'"{args.output}", allowed formats are: {",".join(OUTPUTS)}')
    # kubectl prefixes names with their kind when more than one type was asked for.
    with_kind = len(sels) > 1
    if args.watch or args.watch_only:
        if len(sels) != 1 or len(sels[0].names) > 1:
            raise UsageError("you may only specify a single resource type")
        return watch(ctx, sels[0], args)
    if args.output in (None, "wide"):
        _human(ctx, sels, args, with_kind)
    else:
        _structured(ctx, sels, args)
    for line in ctx.errors:
        ctx.err.write(line + "\n")
    return 1 if ctx.errors else 0


# -------------------------------------------------------------------------- watch


def _watch_query(args: argparse.Namespace, sel: Selection, rv: str) -> dict[str, Any]:
    query = _query(args)
    if sel.names:
        name_sel = f"metadata.name={sel.names[0]}"
        query["fieldSelector"] = ",".join(x for x in (query["fieldSelector"], name_sel) if x)
    query.update(watch="1", resourceVersion=rv, allowWatchBookmarks="true")
    return query


def watch(ctx: GetContext, sel: Selection, args: argparse.Namespace) -> int:
    """The table (unless --watch-only), then one row per event as it happens, aligned
    with what came before (kubectl's RememberWidths tabwriter)."""
    rt = sel.rt
    human = args.output in (None, "wide")
    accept = TABLE_ACCEPT if human else "application/json"
    path = collection_path(rt, ctx.ns_for(rt))
    query = _query(args)
    if sel.names:
        ctx.client.get(object_path(rt, ctx.ns_for(rt) or "", sel.names[0]))  # NotFound
        query["fieldSelector"] = _watch_query(args, sel, "")["fieldSelector"]
    listed = ctx.client.get(path, query, accept=accept) or {}
    rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")
    tw = TabWriter(GET_MINWIDTH, GET_PADDING, remember_widths=True)
    columns: list[dict[str, Any]] | None = listed.get("columnDefinitions") if human else None
    opts: dict[str, Any] = dict(wide=args.output == "wide",
                                with_namespace=ctx.all_namespaces and rt.namespaced,
                                show_labels=args.show_labels, label_columns=args.label_columns)
    headers_due = not args.no_headers
    events_col = "ADDED" if args.output_watch_events else ""
    if not args.watch_only:
        rows = listed.get("rows") if human else listed.get("items")
        if rows:
            if human:
                lines = table_lines(listed, headers=headers_due, event_type=events_col, **opts)
                headers_due = False
                ctx.out.write(tw.format("\n".join(lines) + "\n"))
            else:
                for obj in rows:
                    _print_object(ctx, rt, _complete(rt, obj), args)
        # Unlike a plain get, kubectl's watch says nothing about an empty list.
        ctx.out.flush()
    for event in ctx.client.stream(path, _watch_query(args, sel, rv), accept=accept):
        typ, obj = event.get("type"), event.get("object") or {}
        if typ == "BOOKMARK":
            continue
        if typ == "ERROR":
            ctx.err.write(f"Error from server ({obj.get('reason', 'Unknown')}): "
                          f"{obj.get('message', '')}\n")
            return 1
        if human:
            if obj.get("columnDefinitions"):
                columns = obj["columnDefinitions"]
            lines = table_lines(obj, headers=headers_due, columns=columns,
                                event_type=str(typ) if args.output_watch_events else "", **opts)
            headers_due = False
            ctx.out.write(tw.format("\n".join(lines) + "\n"))
        else:
            _print_object(ctx, rt, _complete(rt, obj), args)
        ctx.out.flush()
    return 0


def _print_object(ctx: GetContext, rt: ResourceType, obj: dict[str, Any],
                  args: argparse.Namespace) -> None:
    if args.output == "name":
        ctx.out.write(resource_name(rt.kind, rt.group,
                                    (obj.get("metadata") or {}).get("name", "")) + "\n")
    elif args.output == "json":
        ctx.out.write(to_json(obj))
    else:
        # kubectl's YAML printer separates documents, it does not start with one.
        ctx.out.write(("---\n" if ctx.printed else "") + to_yaml(obj))
    ctx.printed += 1
