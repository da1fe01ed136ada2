"""A client's address as the limits count it: one text per network a client holds.

What a proxy or a connection hands us varies in form for one client: "1.2.3.4",
"1.2.3.4:5555" (some proxies append the port, and every connection then has its own),
"[2001:db8::1]:443", "::ffff:1.2.3.4" (an IPv4 client on an IPv6 socket), "fe80::1%eth0".
An IPv6 client is given a whole /64 (2^64 addresses to choose from), so an IPv6 address
counts by its network (``ipv6_prefix`` bits). Every place that keys a limit on an address
(the service's ``place``, the web server's upload limits, the page's handlers) reads it
through ``address_key``; which address is the client's behind our proxies:
``forwarded_address``.

Imports only the standard library.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

_V4_WITH_PORT = re.compile(r"(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}")
_V6_BRACKETED = re.compile(r"\[([0-9A-Fa-f:.]+(?:%[^\]]*)?)\](?::\d{1,5})?")


def address_key(text: str | None, ipv6_prefix: int = 64) -> str:
    """The address as limits count it: without a port or a zone, an IPv4-mapped IPv6
    address as its IPv4 one, an IPv6 address as its ``ipv6_prefix`` network ("2001:db8::/64";
    128 or more: the address itself); text that is no IP address, stripped ("" for none)."""
    raw = str(text or "").strip().strip('"').strip()
    bracketed = _V6_BRACKETED.fullmatch(raw)
    with_port = _V4_WITH_PORT.fullmatch(raw)
    host = bracketed.group(1) if bracketed else with_port.group(1) if with_port else raw
    host = host.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return raw.lower()
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        bits = min(max(int(ipv6_prefix), 0), 128)
        if bits < 128:
            return str(ipaddress.IPv6Network((ip, bits), strict=False))
    return str(ip)


def forwarded_address(lines: Iterable[str], host: str, *, behind_proxy: bool, hops: int) -> str:
    """The caller's address as given: behind ``hops`` proxies of ours, the X-Forwarded-For
    entry the farthest of them wrote (``hops`` from the end, every header line joined: RFC
    9110 lets a proxy add a line of its own; what a client wrote comes first), else the
    connection's ``host``."""
    entries = (
        [e.strip() for line in lines for e in str(line).split(",") if e.strip()]
        if behind_proxy
        else []
    )
    return entries[-min(max(hops, 1), len(entries))] if entries else host
