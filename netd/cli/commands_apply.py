"""`netd apply -f`, `netd create -f`, `netd delete -f`: manifests over the HTTP API.

apply is kubectl's client-side apply: the object is created carrying the
`kubectl.kubernetes.io/last-applied-configuration` annotation, later applies send a
strategic-merge three-way patch between that annotation, the file and the live
object. The annotation is byte-compatible with kubectl's (sorted keys, compact JSON,
HTML-safe escapes, trailing newline, `annotations: {}` kept), so kubectl and netd can
take turns applying the same file without spurious diffs.
"""
from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

import yaml

from netd.api.kinds import REGISTRY, ResourceType
from netd.cli.commands_kinds import collection_path, object_path
from netd.cli.http import ApiError, Client
from netd.cli.printing import kind_prefix

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
STRATEGIC = "application/strategic-merge-patch+json"
_EXTENSIONS = (".json", ".yaml", ".yml")
_VALIDATE_HINT = "; if you choose to ignore these errors, turn validation off with --validate=false"


class ManifestError(Exception):
    """A manifest that cannot be used; the message names the file (kubectl wording)."""


@dataclass(frozen=True)
class Manifest:
    source: str                 # the file name as given, or STDIN
    obj: dict[str, Any]


# ------------------------------------------------------------------------ loading


def _files(path: str, recursive: bool) -> list[Path]:
    p = Path(path)
    if p.is_dir():
        walker = p.rglob("*") if recursive else p.iterdir()
        return sorted(f for f in walker if f.is_file() and f.suffix in _EXTENSIONS)
    if not p.exists():
        raise ManifestError(f'the path "{path}" does not exist')
    return [p]


def _documents(text: str, source: str) -> list[Any]:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        # A JSON stream (kubectl accepts concatenated objects); YAML would choke on tabs.
        decoder = json.JSONDecoder()
        docs: list[Any] = []
        pos = 0
        try:
            while True:
                while pos < len(text) and text[pos].isspace():
                    pos += 1
                if pos >= len(text):
                    return docs
                doc, pos = decoder.raw_decode(text, pos)
                docs.append(doc)
        except json.JSONDecodeError:
            pass  # not JSON after all (a YAML flow mapping): let YAML say why
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ManifestError(f"error parsing {source}: error converting YAML to JSON: "
                            f"{_yaml_problem(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"yaml: line {mark.line + 1}: {problem}"
    return f"yaml: {problem}"


def parse_manifests(text: str, source: str) -> list[Manifest]:
    """The objects of one file: empty documents skipped, `List` kinds flattened."""
    out: list[Manifest] = []
    for doc in _documents(text, source):
        if doc is None:
            continue
        if isinstance(doc, list):
            items = doc
        elif isinstance(doc, dict) and str(doc.get("kind", "")).endswith("List") and \
                isinstance(doc.get("items"), list):
            items = doc["items"]
        else:
            items = [doc]
        for item in items:
            if not isinstance(item, dict):
                raise ManifestError(f"error parsing {source}: error unmarshaling JSON: "
                                    f"json: cannot unmarshal {_go_type(item)} into Go value "
                                    "of type map[string]interface {}")
            missing = [f"{f} not set" for f in ("apiVersion", "kind") if not item.get(f)]
            if missing:
                what = missing[0] if len(missing) == 1 else "[" + ", ".join(missing) + "]"
                raise ManifestError(f'error validating "{source}": error validating data: '
                                    f"{what}{_VALIDATE_HINT}")
            meta = item.get("metadata")
            if meta is not None and not isinstance(meta, dict):
                raise ManifestError(f'error validating "{source}": error validating data: '
                                    f"metadata must be a mapping{_VALIDATE_HINT}")
            out.append(Manifest(source, item))
    return out


def _go_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    return "value"


def load_manifests(paths: list[str], recursive: bool = False,
                   stdin: TextIO | None = None) -> list[Manifest]:
    """Every object of every -f argument (file, directory or `-`), in order."""
    if not paths:
        raise ManifestError("must specify one of -f and -k")
    out: list[Manifest] = []
    for path in paths:
        if path == "-":
            out += parse_manifests((stdin or sys.stdin).read(), "STDIN")
            continue
        for f in _files(path, recursive):
            try:
                text = f.read_text()
            except OSError as exc:
                raise ManifestError(f"error reading {f}: {exc.strerror}") from None
            except UnicodeDecodeError:
                raise ManifestError(f"error parsing {f}: not a text file") from None
            out += parse_manifests(text, str(f))
    return out


# ------------------------------------------------------------------- annotation


def go_json(obj: Any) -> str:
    """encoding/json's compact Marshal: sorted keys, HTML-safe, U+2028/9 escaped."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                    ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def last_applied(obj: dict[str, Any]) -> str:
    """The annotation value kubectl's GetModifiedConfiguration writes for `obj`."""
    clean = copy.deepcopy(obj)
    meta = clean.setdefault("metadata", {})
    anns = dict(meta.get("annotations") or {})
    anns.pop(LAST_APPLIED, None)
    meta["annotations"] = anns       # kept even when empty, as kubectl does
    return go_json(clean) + "\n"


def with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    anns = dict(meta.get("annotations") or {})
    anns.pop(LAST_APPLIED, None)
    value = last_applied(obj)
    anns[LAST_APPLIED] = value
    meta["annotations"] = anns
    return out


# ------------------------------------------------------------------------ writes


@dataclass
class Outcome:
    line: str = ""              # stdout line on success
    error: str = ""             # stderr line on failure
    target: tuple[ResourceType, str, str] | None = None   # deleted: type, namespace, name
    uid: str = ""


def _rt_for(m: Manifest) -> ResourceType:
    obj = m.obj
    rt = REGISTRY.by_api_version_kind(str(obj.get("apiVersion")), str(obj.get("kind")))
    if rt is None:
        meta = obj.get("metadata") or {}
        raise ManifestError(
            f'resource mapping not found for name: "{meta.get("name", "")}" namespace: '
            f'"{meta.get("namespace", "")}" from "{m.source}": no matches for kind '
            f'"{obj.get("kind")}" in version "{obj.get("apiVersion")}"\n'
            "ensure CRDs are installed first")
    return rt


def prepare(m: Manifest, namespace: str, explicit: bool) -> tuple[ResourceType, dict[str, Any]]:
    """Resolve the kind and fill in the namespace the way kubectl's builder does."""
    rt = _rt_for(m)
    obj = copy.deepcopy(m.obj)
    meta = obj.setdefault("metadata", {})
    if rt.namespaced:
        given = meta.get("namespace")
        if given and explicit and given != namespace:
            raise ManifestError(f'the namespace from the provided object "{given}" does not '
                                f'match the namespace "{namespace}". You must pass '
                                f"'--namespace={given}' to perform this operation.")
        meta["namespace"] = given or namespace
    return rt, obj


def _label(rt: ResourceType, name: str) -> str:
    return f"{kind_prefix(rt.kind, rt.group)}/{name}"


def _dry(dry_run: str) -> tuple[dict[str, Any], str]:
    if dry_run == "server":
        return {"dryRun": "All"}, " (server dry run)"
    if dry_run == "client":
        return {}, " (dry run)"
    return {}, ""


def create_one(client: Client, m: Manifest, namespace: str, explicit: bool,
               dry_run: str = "none") -> Outcome:
    rt, obj = prepare(m, namespace, explicit)
    meta = obj["metadata"]
    query, suffix = _dry(dry_run)
    ns = meta.get("namespace", "")
    try:
        if dry_run == "client":
            created = obj
        else:
            created = client.json("POST", collection_path(rt, ns if rt.namespaced else None),
                                  query=query, body=obj)
    except ApiError as err:
        return Outcome(error=f"Error from server ({err.reason}): error when creating "
                             f'"{m.source}": {err.message}')
    name = (created.get("metadata") or {}).get("name") or meta.get("name", "")
    return Outcome(line=f"{_label(rt, name)} created{suffix}")


PatchFn = Callable[[Any, dict[str, Any], dict[str, Any], str], dict[str, Any]]


def _three_way() -> PatchFn:
    from netd.api.patch import create_three_way_merge_patch  # owned by another module
    return create_three_way_merge_patch


def apply_one(client: Client, m: Manifest, namespace: str, explicit: bool,
              dry_run: str = "none", three_way: PatchFn | None = None) -> Outcome:
    rt, obj = prepare(m, namespace, explicit)
    meta = obj["metadata"]
    name = meta.get("name")
    if not name:
        return Outcome(error=f'error: error when retrieving current configuration of:\n'
                             f'Resource: "{rt.group_resource}", GroupVersionKind: '
                             f'"{rt.api_version}, Kind={rt.kind}"\nfrom server for: '
                             f'"{m.source}": resource name may not be empty')
    ns = meta.get("namespace", "") if rt.namespaced else ""
    path = object_path(rt, ns, name)
    modified = with_last_applied(obj)
    query, suffix = _dry(dry_run)
    label = _label(rt, name)
    try:
        current = client.get(path)
    except ApiError as err:
        if err.code != 404:
            return Outcome(error=f"Error from server ({err.reason}): error when retrieving "
                                 f'current configuration of "{m.source}": {err.message}')
        try:
            if dry_run != "client":
                client.json("POST", collection_path(rt, ns if rt.namespaced else None),
                            query=query, body=modified)
        except ApiError as cerr:
            return Outcome(error=f"Error from server ({cerr.reason}): error when creating "
                                 f'"{m.source}": {cerr.message}')
        return Outcome(line=f"{label} created{suffix}")
    patch_fn = three_way or _three_way()
    for _attempt in range(5):
        text = ((current.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
        try:
            original = json.loads(text) if text else None
        except ValueError:
            original = None
        patch = patch_fn(original, modified, current, rt.kind)
        if not patch:
            return Outcome(line=f"{label} unchanged{suffix}")
        if dry_run == "client":
            return Outcome(line=f"{label} configured{suffix}")
        try:
            client.json("PATCH", path, query=query, body=patch, content_type=STRATEGIC)
            return Outcome(line=f"{label} configured{suffix}")
        except ApiError as err:
            # kubectl re-reads and recomputes the patch on a conflict (5 tries).
            if err.code == 409 and err.reason == "Conflict":
                try:
                    current = client.get(path)
                    continue
                except ApiError as gerr:
                    err = gerr
            return Outcome(error=f"Error from server ({err.reason}): error when patching "
                                 f'"{m.source}": {err.message}')
    return Outcome(error=f'error: error when patching "{m.source}": too many conflicts')


def delete_object(client: Client, rt: ResourceType, ns: str, name: str,
                  options: dict[str, Any], source: str = "",
                  ignore_not_found: bool = False) -> Outcome:
    """DELETE one object; the outcome carries what `--wait` needs to follow it."""
    try:
        gone = client.json("DELETE", object_path(rt, ns, name), body=options) or {}
    except ApiError as err:
        if err.code == 404 and ignore_not_found:
            return Outcome()
        where = f'error when deleting "{source}": ' if source else ""
        return Outcome(error=f"Error from server ({err.reason}): {where}{err.message}")
    operation = "force deleted" if options.get("gracePeriodSeconds") == 0 else "deleted"
    # A Status answer (the object is already gone) carries the uid in its details.
    meta = (gone.get("details") if gone.get("kind") == "Status" else gone.get("metadata")) or {}
    return Outcome(line=f'{kind_prefix(rt.kind, rt.group)} "{name}" {operation}',
                   target=(rt, ns, name), uid=str(meta.get("uid", "")))


def delete_one(client: Client, m: Manifest, namespace: str, explicit: bool,
               options: dict[str, Any], ignore_not_found: bool = False) -> Outcome:
    rt, obj = prepare(m, namespace, explicit)
    meta = obj["metadata"]
    ns = meta.get("namespace", "") if rt.namespaced else ""
    return delete_object(client, rt, ns, meta.get("name", ""), options, m.source,
                         ignore_not_found)
