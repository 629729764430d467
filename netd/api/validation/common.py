"""Shared validation vocabulary: field paths, tolerant accessors, Go-style value rendering,
and the string validators of k8s.io/apimachinery/pkg/util/validation (DNS names, qualified
names, label values, port names, config keys, percents).

Messages are apimachinery's word for word, because kubectl users and client code match on
them. Field paths are plain strings built with child()/index()/key().
"""
from __future__ import annotations

import re
from typing import Any, Callable

from netd.api.errors import FieldError, invalid, not_supported, required

NameFn = Callable[[str, bool], list[str]]


# --- field paths -------------------------------------------------------------------------

def child(path: str, *names: str) -> str:
    for name in names:
        path = f"{path}.{name}" if path else name
    return path


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# --- tolerant accessors: bodies are user JSON, so any field may have any shape -----------

def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def as_list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def as_str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def as_int(v: Any) -> int | None:
    if isinstance(v, bool) or not isinstance(v, int):
        return None
    return v


def str_map(v: Any) -> dict[str, str]:
    return {str(k): (x if isinstance(x, str) else str(x)) for k, x in as_dict(v).items()}


# --- Go-style rendering of composite bad values ------------------------------------------

class GoValue:
    """A bad value pre-rendered the way Go's %#v prints it (errors.py prints str())."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"GoValue({self.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GoValue) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def go_quote(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def go_string_map(m: Any) -> GoValue:
    if not isinstance(m, dict):
        return GoValue("map[string]string(nil)")
    inner = ", ".join(f"{go_quote(str(k))}:{go_quote(str(m[k]))}" for k in sorted(m))
    return GoValue("map[string]string{" + inner + "}")


def go_strings(items: Any) -> GoValue:
    if not isinstance(items, list):
        return GoValue("[]string(nil)")
    return GoValue("[]string{" + ", ".join(go_quote(str(s)) for s in items) + "}")


def go_label_selector(sel: Any) -> GoValue:
    sel = as_dict(sel)
    exprs = sel.get("matchExpressions")
    if isinstance(exprs, list):
        parts = []
        for e in exprs:
            e = as_dict(e)
            parts.append("v1.LabelSelectorRequirement{Key:" + go_quote(as_str(e.get("key")))
                         + ", Operator:" + go_quote(as_str(e.get("operator")))
                         + ", Values:" + go_strings(e.get("values")).text + "}")
        rendered = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    else:
        rendered = "[]v1.LabelSelectorRequirement(nil)"
    return GoValue("v1.LabelSelector{MatchLabels:" + go_string_map(sel.get("matchLabels")).text
                   + ", MatchExpressions:" + rendered + "}")


def go_int_or_string(v: Any) -> GoValue:
    if isinstance(v, str):
        return GoValue(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{go_quote(v)}}}")
    n = v if isinstance(v, int) and not isinstance(v, bool) else 0
    return GoValue(f'intstr.IntOrString{{Type:0, IntVal:{n}, StrVal:""}}')


# --- apimachinery/pkg/util/validation ----------------------------------------------------

def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    # apimachinery joins examples as "'a', or 'b', " before the regex clause.
    ex = "".join((" or " if i else "") + f"'{e}', " for i, e in enumerate(examples))
    return f"{msg} (e.g. {ex}regex used for validation is '{fmt}')"


def max_len_error(n: int) -> str:
    return f"must be no more than {n} characters"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


EMPTY_ERROR = "must be non-empty"

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric "
                     "characters or '-', and must start and end with an alphanumeric character")
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                         "characters, '-' or '.', and must start and end with an alphanumeric "
                         "character")
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or "
                     "'-', start with an alphabetic character, and end with an alphanumeric "
                     "character")
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start "
                      "and end with an alphanumeric character")
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, "
                   "'-', '_' or '.', and must start and end with an alphanumeric character")
CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"
CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
PERCENT_FMT = "[0-9]+%"
PERCENT_MSG = "a valid percent string must be a numeric string followed by an ending '%'"

_DNS1123_LABEL = re.compile("^" + DNS1123_LABEL_FMT + "$")
_DNS1123_SUBDOMAIN = re.compile("^" + DNS1123_SUBDOMAIN_FMT + "$")
_DNS1035_LABEL = re.compile("^" + DNS1035_LABEL_FMT + "$")
_QUALIFIED_NAME = re.compile("^" + QUALIFIED_NAME_FMT + "$")
_LABEL_VALUE = re.compile("^" + LABEL_VALUE_FMT + "$")
_CONFIG_MAP_KEY = re.compile("^" + CONFIG_MAP_KEY_FMT + "$")
_PERCENT = re.compile("^" + PERCENT_FMT + "$")
_PORT_NAME_CHARSET = re.compile("^[-a-z0-9]+$")
_HAS_LETTER = re.compile("[a-z]")


def is_dns1123_label(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _DNS1123_LABEL.match(v):
        errs.append(regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def is_dns1123_subdomain(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append(max_len_error(253))
    if not _DNS1123_SUBDOMAIN.match(v):
        errs.append(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def is_dns1035_label(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _DNS1035_LABEL.match(v):
        errs.append(regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def is_qualified_name(v: str) -> list[str]:
    errs: list[str] = []
    parts = v.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + EMPTY_ERROR)
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return ["a qualified name " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT,
                                                   "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    if not name:
        errs.append("name part " + EMPTY_ERROR)
    elif len(name) > 63:
        errs.append("name part " + max_len_error(63))
    if not _QUALIFIED_NAME.match(name):
        errs.append("name part " + regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT,
                                               "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(v: str) -> list[str]:
    errs = []
    if len(v) > 63:
        errs.append(max_len_error(63))
    if not _LABEL_VALUE.match(v):
        errs.append(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def is_valid_port_num(n: int) -> list[str]:
    return [] if 1 <= n <= 65535 else [inclusive_range_error(1, 65535)]


def is_valid_port_name(v: str) -> list[str]:
    """IANA_SVC_NAME (RFC 6335): what container and target port names must be."""
    errs = []
    if len(v) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET.match(v):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    elif not _HAS_LETTER.search(v):
        errs.append("must contain at least one letter (a-z)")
    if "--" in v:
        errs.append("must not contain consecutive hyphens")
    if v and (v[0] == "-" or v[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_config_map_key(v: str) -> list[str]:
    errs = []
    if len(v) > 253:
        errs.append(max_len_error(253))
    if not _CONFIG_MAP_KEY.match(v):
        errs.append(regex_error(CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT,
                                "key.name", "KEY_NAME", "key-name"))
    if v == ".":
        errs.append("must not be '.'")
    elif v == "..":
        errs.append("must not be '..'")
    elif v.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def is_relaxed_env_var_name(v: str) -> list[str]:
    # RelaxedEnvironmentVariableValidation is beta and on by default in 1.32.
    errs = []
    if not v:
        errs.append("environment variable name " + EMPTY_ERROR)
    for ch in v:
        if ord(ch) > 127 or not ch.isprintable() or ch == "=":
            errs.append("a valid environment variable name must consist only of printable "
                        "ASCII characters other than '='")
            break
    return errs


def is_valid_percent(v: str) -> list[str]:
    if not _PERCENT.match(v):
        return [regex_error(PERCENT_MSG, PERCENT_FMT, "1%", "93%")]
    return []


def is_valid_path_segment_name(v: str, prefix: bool = False) -> list[str]:
    if not prefix:
        for bad in (".", ".."):
            if v == bad:
                return [f"may not be '{bad}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in v]


# --- name functions (ValidateNameFunc): prefix=True for generateName ---------------------

def _mask_trailing_dash(name: str) -> str:
    if len(name) > 1 and name.endswith("-"):
        return name[:-1] + "a"
    return name


def name_is_dns_subdomain(name: str, prefix: bool) -> list[str]:
    return is_dns1123_subdomain(_mask_trailing_dash(name) if prefix else name)


def name_is_dns_label(name: str, prefix: bool) -> list[str]:
    return is_dns1123_label(_mask_trailing_dash(name) if prefix else name)


def name_is_dns1035_label(name: str, prefix: bool) -> list[str]:
    return is_dns1035_label(_mask_trailing_dash(name) if prefix else name)


def name_is_path_segment(name: str, prefix: bool) -> list[str]:
    return is_valid_path_segment_name(name, prefix)


# --- field-error helpers -----------------------------------------------------------------

def validate_dns1123_label(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, m) for m in is_dns1123_label(value)]


def validate_dns1123_subdomain(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, m) for m in is_dns1123_subdomain(value)]


def validate_qualified_name(value: str, path: str) -> list[FieldError]:
    return [invalid(path, value, m) for m in is_qualified_name(value)]


def validate_nonnegative(value: Any, path: str) -> list[FieldError]:
    n = as_int(value)
    if value is None:
        return []
    if n is None:
        return [invalid(path, value, "must be an integer")]
    return [invalid(path, n, "must be greater than or equal to 0")] if n < 0 else []


def validate_immutable(new: Any, old: Any, path: str, shown: Any = None) -> list[FieldError]:
    if new == old:
        return []
    return [invalid(path, new if shown is None else shown, "field is immutable")]


def validate_enum(value: Any, path: str, supported: list[str],
                  allow_empty: bool = False) -> list[FieldError]:
    s = as_str(value)
    if not s:
        return [] if allow_empty else [required(path)]
    return [] if s in supported else [not_supported(path, s, supported)]

