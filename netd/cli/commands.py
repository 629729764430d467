"""The `netd` commands that talk to a running cluster over its HTTP API:
apply, create, get, delete, describe, scale, status.

They exist for hosts without kubectl, so their output is kubectl's (same lines,
same tables, same `Error from server (Reason): message`), and everything goes
through the API like kubectl's requests do: nothing reads the store directly.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, TextIO

from netd.api.kinds import ResourceType
from netd.cli.commands_apply import (
    Manifest, ManifestError, Outcome, apply_one, create_one, delete_object, delete_one,
    load_manifests,
)
from netd.cli.commands_kinds import UsageError, collection_path, object_path, parse_args
from netd.cli.http import DEFAULT_CLUSTER, DEFAULT_STATE_DIR, ApiError, Client, Target, Unreachable
from netd.cli.printing import kind_prefix

MERGE_PATCH = "application/merge-patch+json"
Handler = Callable[[Client, argparse.Namespace, TextIO, TextIO], int]


# --------------------------------------------------------------------- plumbing


def _common(p: argparse.ArgumentParser, namespaced: bool = True) -> None:
    p.add_argument("--name", dest="cluster_name", default=None,
                   help=f"cluster name (default: {DEFAULT_CLUSTER})")
    p.add_argument("--state-dir", default=None,
                   help=f"state directory (default: {DEFAULT_STATE_DIR})")
    p.add_argument("--server", default=None,
                   help="API URL (default: the cluster's socket, then its kubeconfig)")
    if namespaced:
        p.add_argument("-n", "--namespace", default=None,
                       help="namespace (default: the kubeconfig context's, else default)")


def target_of(args: argparse.Namespace) -> Target:
    return Target(args.cluster_name or DEFAULT_CLUSTER, args.state_dir or DEFAULT_STATE_DIR,
                  args.server)


def _namespace(client: Client, args: argparse.Namespace) -> str:
    return getattr(args, "namespace", None) or client.default_namespace


def run(handler: Handler, args: argparse.Namespace, out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    """Run one command and turn every failure into kubectl's message and exit 1."""
    out, err = out or sys.stdout, err or sys.stderr
    target = target_of(args)
    try:
        client = Client(target)
        return handler(client, args, out, err)
    except Unreachable as exc:
        err.write(f'netd: cannot reach cluster "{target.cluster}": is `netd up` running? '
                  f"({exc})\n")
    except ApiError as exc:
        err.write(exc.kubectl_text() + "\n")
    except (UsageError, ManifestError) as exc:
        err.write(f"error: {exc}\n")
    return 1


def _bind(handler: Handler) -> Callable[[argparse.Namespace], int]:
    return lambda args: run(handler, args)


# -------------------------------------------------------------- apply / create


def _manifests(args: argparse.Namespace) -> list[Manifest]:
    return load_manifests(args.filename, getattr(args, "recursive", False))


def _each(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO,
          fn: Callable[[Manifest, str, bool], Outcome]) -> int:
    docs = _manifests(args)
    namespace, explicit = _namespace(client, args), bool(args.namespace)
    failed = False
    for m in docs:
        try:
            result = fn(m, namespace, explicit)
        except ManifestError as exc:
            result = Outcome(error=f"error: {exc}")
        if result.line:
            out.write(result.line + "\n")
            out.flush()
        if result.error:
            err.write(result.error + "\n")
            failed = True
    return 1 if failed else 0


def cmd_apply(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _each(client, args, out, err,
                 lambda m, ns, ex: apply_one(client, m, ns, ex, args.dry_run))


def cmd_create(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    return _each(client, args, out, err,
                 lambda m, ns, ex: create_one(client, m, ns, ex, args.dry_run))


# ------------------------------------------------------------------- get/describe


def cmd_get(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from netd.cli.commands_get import GetContext, cmd_get as get

    ctx = GetContext(client, _namespace(client, args), args.all_namespaces, out, err)
    return get(ctx, args)


def cmd_describe(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from netd.cli.commands_describe import cmd_describe as describe

    return describe(client, _namespace(client, args), args.all_namespaces, args, out, err)


# ------------------------------------------------------------------------ delete


def delete_options(args: argparse.Namespace) -> dict[str, Any]:
    """The DeleteOptions body kubectl sends for --cascade/--grace-period/--now/--force."""
    cascade = {"background": "Background", "orphan": "Orphan", "foreground": "Foreground",
               "true": "Background", "false": "Orphan"}.get(args.cascade.lower())
    if cascade is None:
        raise UsageError(f'invalid cascade value ({args.cascade}). Must be "background", '
                         f'"foreground", or "orphan"')
    options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1",
                               "propagationPolicy": cascade}
    grace = args.grace_period
    if args.now:
        if grace != -1:
            raise UsageError("--now and --grace-period cannot be specified together")
        grace = 1
    if grace == 0 and not args.force:
        # kubectl turns --grace-period=0 into 1 unless --force says it means it.
        grace = 1
    if args.force and grace < 0:
        grace = 0
    if args.force and grace > 0:
        raise UsageError("--force and --grace-period greater than 0 cannot be specified "
                         "together")
    if grace >= 0:
        options["gracePeriodSeconds"] = grace
    return options


def _wait_gone(client: Client, rt: ResourceType, ns: str, name: str, uid: str,
               deadline: float) -> bool:
    """Block until the object (this uid) is gone: kubectl delete's --wait."""
    while True:
        try:
            current = client.get(object_path(rt, ns, name))
        except ApiError as exc:
            if exc.code == 404:
                return True
            raise
        meta = current.get("metadata") or {}
        if uid and meta.get("uid") != uid:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        query = {"watch": "1", "fieldSelector": f"metadata.name={name}",
                 "resourceVersion": meta.get("resourceVersion", ""),
                 "timeoutSeconds": str(max(1, min(int(remaining), 300)))}
        for event in client.stream(collection_path(rt, ns if rt.namespaced else None), query):
            if event.get("type") == "DELETED":
                return True


def _delete_targets(client: Client, args: argparse.Namespace
                    ) -> list[tuple[ResourceType, str, str]]:
    if not args.args:
        raise UsageError("You must provide one or more resources by argument or filename.")
    namespace = _namespace(client, args)
    targets: list[tuple[ResourceType, str, str]] = []
    for sel in parse_args(args.args):
        ns = namespace if sel.rt.namespaced else ""
        if sel.names:
            targets += [(sel.rt, ns, n) for n in sel.names]
        elif args.all or args.selector:
            where = None if (args.all_namespaces or not sel.rt.namespaced) else ns
            doc = client.get(collection_path(sel.rt, where),
                             {"labelSelector": args.selector or ""})
            for item in (doc or {}).get("items") or []:
                meta = item.get("metadata") or {}
                targets.append((sel.rt, meta.get("namespace", ""), meta.get("name", "")))
        else:
            raise UsageError("resource(s) were provided, but no name was specified")
    return targets


FORCE_WARNING = ("Warning: Immediate deletion does not wait for confirmation that the running "
                 "resource has been terminated. The resource may continue to run on the "
                 "cluster indefinitely.\n")


def cmd_delete(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    options = delete_options(args)
    if options.get("gracePeriodSeconds") == 0:
        err.write(FORCE_WARNING)
    outcomes: list[Outcome] = []
    if args.filename:
        if args.args:
            raise UsageError("cannot specify both filenames and resource arguments")
        namespace, explicit = _namespace(client, args), bool(args.namespace)
        for m in _manifests(args):
            try:
                outcomes.append(delete_one(client, m, namespace, explicit, options,
                                           args.ignore_not_found))
            except ManifestError as exc:
                outcomes.append(Outcome(error=f"error: {exc}"))
    else:
        targets = _delete_targets(client, args)
        if not targets and (args.all or args.selector):
            out.write("No resources found\n")     # kubectl writes this one to stdout
        for rt, ns, name in targets:
            outcomes.append(delete_object(client, rt, ns, name, options,
                                          ignore_not_found=args.ignore_not_found))
    failed = False
    for o in outcomes:
        if o.line:
            out.write(o.line + "\n")
            out.flush()
        if o.error:
            err.write(o.error + "\n")
            failed = True
    if args.wait:
        # kubectl waits "forever" (a week) unless --timeout says otherwise.
        deadline = time.monotonic() + (args.timeout if args.timeout > 0 else 7 * 86400)
        for o in outcomes:
            if o.target is None:
                continue
            rt, ns, name = o.target
            if not _wait_gone(client, rt, ns, name, o.uid, deadline):
                err.write(f"error: timed out waiting for the condition on "
                          f"{rt.group_resource}/{name}\n")
                failed = True
    return 1 if failed else 0


# ------------------------------------------------------------------------- scale


def cmd_scale(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.replicas < 0:
        raise UsageError("The --replicas=COUNT flag is required, and COUNT must be greater "
                         "than or equal to 0")
    sels = parse_args(args.args)
    namespace = _namespace(client, args)
    failed = False
    for sel in sels:
        if sel.rt.subresource("scale") is None:
            raise UsageError(f"cannot scale {sel.rt.group_resource}: it has no scale "
                             "subresource")
        if not sel.names:
            raise UsageError("resource(s) were provided, but no name was specified")
        for name in sel.names:
            ns = namespace if sel.rt.namespaced else ""
            path = object_path(sel.rt, ns, name, "scale")
            try:
                if args.current_replicas is not None:
                    current = client.get(path)
                    have = (current.get("spec") or {}).get("replicas", 0)
                    if have != args.current_replicas:
                        err.write(f"error: Expected replicas to be {args.current_replicas}, "
                                  f"was {have}\n")
                        failed = True
                        continue
                client.json("PATCH", path, body={"spec": {"replicas": args.replicas}},
                            content_type=MERGE_PATCH)
            except ApiError as exc:
                err.write(exc.kubectl_text() + "\n")
                failed = True
                continue
            out.write(f"{kind_prefix(sel.rt.kind, sel.rt.group)}/{name} scaled\n")
    return 1 if failed else 0


# ------------------------------------------------------------------------ status


def _count(client: Client, plural: str) -> list[dict[str, Any]]:
    from netd.api.kinds import REGISTRY

    rt = REGISTRY.resolve(plural)
    assert rt is not None
    doc = client.get(collection_path(rt, None))
    return list((doc or {}).get("items") or [])


def _tally(values: list[str]) -> str:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


def cmd_status(client: Client, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    target = client.target
    code, text = client.text("/readyz", {"verbose": "1"})
    pid_file = target.root / "netd.pid"
    pid = pid_file.read_text().strip() if _readable(pid_file) else ""
    ready = code == 200
    lines = [f"cluster {target.cluster}: {'ready' if ready else 'not ready'}"
             + (f" (pid {pid})" if pid else "")]
    lines.append(f"  API:         {client.address}")
    server = client.kubeconfig_server
    if server and server != client.address:
        lines.append(f"  server:      {server}")
    lines.append(f"  kubeconfig:  {target.kubeconfig}")
    failed = [ln[3:].split(" ")[0] for ln in text.splitlines() if ln.startswith("[-]")]
    if failed:
        lines.append(f"  failing:     {', '.join(failed)}")
    nodes = _count(client, "nodes")
    node_ready = [next((c.get("status") for c in (n.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Ready"), "Unknown") for n in nodes]
    lines.append(f"  nodes:       {len(nodes)}"
                 + (f" ({node_ready.count('True')} ready)" if nodes else ""))
    pods = _count(client, "pods")
    phases = _tally([str((p.get("status") or {}).get("phase") or "Pending") for p in pods])
    lines.append(f"  pods:        {len(pods)}" + (f" ({phases})" if pods else ""))
    lines.append(f"  services:    {len(_count(client, 'services'))}")
    out.write("\n".join(lines) + "\n")
    return 0 if ready else 1


def _readable(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


# ----------------------------------------------------------------------- parsers


def _filename(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("-f", "--filename", action="append", default=[], required=required,
                   help="file, directory or - (stdin) with manifests (repeatable)")
    p.add_argument("-R", "--recursive", action="store_true",
                   help="process the directory used in -f recursively")


def _dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", nargs="?", const="client", default="none",
                   choices=("none", "client", "server"),
                   help="only print what would be sent (server: the server validates)")


def add_parsers(sub: Any) -> None:
    # Imported here: commands_exec imports this module's helpers.
    from netd.cli import commands_exec, commands_proxy
    apply = sub.add_parser("apply", help="create or update objects from manifests "
                           "(client-side apply, like kubectl apply)")
    _common(apply)
    _filename(apply, True)
    _dry_run(apply)
    apply.set_defaults(func=_bind(cmd_apply))

    create = sub.add_parser("create", help="create objects from manifests")
    _common(create)
    _filename(create, True)
    _dry_run(create)
    create.set_defaults(func=_bind(cmd_create))

    get = sub.add_parser("get", help="list objects (kubectl get)")
    _common(get)
    get.add_argument("args", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    get.add_argument("-o", "--output", default=None, help="wide, yaml, json or name")
    get.add_argument("-l", "--selector", default="", help="label selector")
    get.add_argument("--field-selector", default="", help="field selector")
    get.add_argument("-A", "--all-namespaces", action="store_true")
    get.add_argument("-w", "--watch", action="store_true",
                     help="after listing, print each change as it happens")
    get.add_argument("--watch-only", action="store_true", help="print only the changes")
    get.add_argument("--output-watch-events", action="store_true",
                     help="with --watch, show the event type (ADDED, MODIFIED, DELETED)")
    get.add_argument("--show-labels", action="store_true")
    get.add_argument("-L", "--label-columns", action="append", default=[],
                     help="add a column with this label's value (repeatable)")
    get.add_argument("--no-headers", action="store_true")
    get.set_defaults(func=_bind(cmd_get))

    delete = sub.add_parser("delete", help="delete objects by name, selector or manifest")
    _common(delete)
    delete.add_argument("args", nargs="*", metavar="TYPE[/NAME] [NAME...]")
    _filename(delete, False)
    delete.add_argument("-l", "--selector", default="")
    delete.add_argument("--all", action="store_true", help="every object of the type")
    delete.add_argument("-A", "--all-namespaces", action="store_true")
    delete.add_argument("--cascade", default="background",
                        help="background (default), foreground or orphan")
    delete.add_argument("--grace-period", type=int, default=-1,
                        help="seconds to let pods terminate (-1: their own setting)")
    delete.add_argument("--now", action="store_true", help="same as --grace-period=1")
    delete.add_argument("--force", action="store_true", help="with --grace-period=0")
    delete.add_argument("--ignore-not-found", action="store_true")
    delete.add_argument("--wait", default=True, type=_bool_flag, nargs="?", const=True,
                        help="wait until the objects are gone (default true)")
    delete.add_argument("--timeout", type=float, default=0,
                        help="seconds to wait with --wait (0: no limit)")
    delete.set_defaults(func=_bind(cmd_delete))

    describe = sub.add_parser("describe", help="show an object in detail (kubectl describe)")
    _common(describe)
    describe.add_argument("args", nargs="+", metavar="TYPE[/NAME] [NAME...]")
    describe.add_argument("-l", "--selector", default="")
    describe.add_argument("-A", "--all-namespaces", action="store_true")
    describe.set_defaults(func=_bind(cmd_describe))

    scale = sub.add_parser("scale", help="set the replicas of a deployment, replica set "
                           "or stateful set")
    _common(scale)
    scale.add_argument("args", nargs="+", metavar="TYPE[/NAME] [NAME...]")
    scale.add_argument("--replicas", type=int, required=True)
    scale.add_argument("--current-replicas", type=int, default=None,
                       help="only scale when the current replicas match")
    scale.set_defaults(func=_bind(cmd_scale))

    status = sub.add_parser("status", help="is the cluster up; where is its API")
    _common(status, namespaced=False)
    status.set_defaults(func=_bind(cmd_status))
    commands_exec.add_parsers(sub)
    commands_proxy.add_parsers(sub)


def _bool_flag(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {value!r}")
