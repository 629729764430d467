"""IP, port, protocol and int-or-percent validation (apimachinery util/validation, core).

Messages are Kubernetes' word for word.
"""
from __future__ import annotations

import functools
import ipaddress
from typing import Any

from netd.api.errors import FieldError, invalid, not_supported, required
from netd.api.validation.common import (as_int, as_str, go_int_or_string, inclusive_range_error,
                                        is_valid_percent, is_valid_port_name, is_valid_port_num)


# --- IPs and ports ----------------------------------------------------------------------

IP_ERROR = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


@functools.lru_cache(maxsize=65536)
def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # Cached: Endpoints of a 1,000-pod Service re-validate the same addresses on every
    # readiness change; the address objects are immutable.
    # netutils.ParseIPSloppy also accepts leading zeros in IPv4 octets ("010.0.0.1").
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        parts = value.split(".")
        if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
            try:
                return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
            except ValueError:
                return None
        return None


def validate_ip(value: str, path: str) -> list[FieldError]:
    return [] if parse_ip(value) is not None else [invalid(path, value, IP_ERROR)]


def validate_cidr(value: str, path: str) -> list[FieldError]:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return [invalid(path, value,
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    if "/" not in value:
        return [invalid(path, value,
                        "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")]
    return []


def validate_non_special_ip(value: str, path: str) -> list[FieldError]:
    """Endpoints, EndpointSlices and externalIPs may not point at these ranges."""
    ip = parse_ip(value)
    if ip is None:
        return [invalid(path, value, "must be a valid IP address")]
    errs = []
    if ip.is_unspecified:
        errs.append(invalid(path, value, f"may not be unspecified ({value})"))
    if ip.is_loopback:
        errs.append(invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if ip.is_link_local:
        errs.append(invalid(path, value,
                            "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
    if _is_link_local_multicast(ip):
        errs.append(invalid(path, value, "may not be in the link-local multicast range "
                                         "(224.0.0.0/24, ff02::/10)"))
    return errs


def _is_link_local_multicast(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in ipaddress.IPv4Network("224.0.0.0/24")
    return ip.is_multicast and (ip.packed[1] & 0x0F) == 0x02


SUPPORTED_PROTOCOLS = ["SCTP", "TCP", "UDP"]


def validate_protocol(value: Any, path: str) -> list[FieldError]:
    p = as_str(value)
    if not p:
        return [required(path)]
    if p not in SUPPORTED_PROTOCOLS:
        return [not_supported(path, p, SUPPORTED_PROTOCOLS)]
    return []


def validate_port_num_or_name(port: Any, path: str) -> list[FieldError]:
    if isinstance(port, str):
        return [invalid(path, port, m) for m in is_valid_port_name(port)]
    n = as_int(port)
    if n is None:
        return [invalid(path, port, "must be an integer or a port name")]
    return [invalid(path, n, m) for m in is_valid_port_num(n)]


def validate_port_num(port: Any, path: str) -> list[FieldError]:
    n = as_int(port)
    if n is None:
        return [invalid(path, port, inclusive_range_error(1, 65535))]
    return [invalid(path, n, m) for m in is_valid_port_num(n)]


def int_or_percent_value(v: Any) -> tuple[int, bool]:
    """(value, is_percent) as apps validation's getIntOrPercentValue reads it."""
    if isinstance(v, str):
        if is_valid_percent(v):
            return 0, False
        return int(v[:-1]), True
    n = as_int(v)
    return (n if n is not None else 0), False


def validate_positive_int_or_percent(v: Any, path: str) -> list[FieldError]:
    if isinstance(v, str):
        return [invalid(path, go_int_or_string(v), m) for m in is_valid_percent(v)]
    n = as_int(v)
    if n is None:
        return [invalid(path, go_int_or_string(v), "must be an integer or percentage (e.g '5%')")]
    return [invalid(path, n, "must be greater than or equal to 0")] if n < 0 else []


def validate_not_more_than_100_percent(v: Any, path: str) -> list[FieldError]:
    value, pct = int_or_percent_value(v)
    if pct and value > 100:
        return [invalid(path, go_int_or_string(v), "must not be greater than 100%")]
    return []
