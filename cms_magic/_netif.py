"""Read the host's outbound IPv4 address from its own interfaces, without any traffic.

Used once per process to fill the ``x-cms-ip`` header. No packet is sent: on
Linux, the default route's interface comes from ``/proc/net/route`` and its
address from the ``SIOCGIFADDR`` ioctl. Other systems return ``None`` (the
caller falls back to 127.0.0.1; ``CMS_MAGIC_SOURCE_IP`` overrides).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
from pathlib import Path

_SIOCGIFADDR = 0x8915  # Linux


def _interface_ipv4(name: str) -> str | None:
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", name.encode()[:15])
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError:
            return None
    return socket.inet_ntoa(reply[20:24])


def default_route_interface(route_table: str | None = None) -> str | None:
    """The interface of the IPv4 default route, from ``/proc/net/route`` text."""
    if route_table is None:
        try:
            route_table = Path("/proc/net/route").read_text()
        except OSError:
            return None
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "00000000":
            return fields[0]
    return None


def outbound_ipv4() -> str | None:
    """The default route interface's address, else the first non-loopback one, else None."""
    if not sys.platform.startswith("linux"):
        return None
    candidates: list[str] = []
    default = default_route_interface()
    if default:
        candidates.append(default)
    candidates += [name for _, name in socket.if_nameindex() if name not in candidates]
    for name in candidates:
        address = _interface_ipv4(name)
        if address and not ipaddress.ip_address(address).is_loopback:
            return address
    return None
