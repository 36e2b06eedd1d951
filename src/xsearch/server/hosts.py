"""Which ``Host`` a request may name: the server's defence against DNS rebinding.

A server bound to the loopback address is out of the network's reach, but not out of a web
page's: a page on ``evil.example`` can point that name at 127.0.0.1 and its scripts then read
the API as their own site. Such a request still names ``evil.example`` in its Host header, so
the server answers only requests that name it by an address (no DNS involved), as
``localhost`` (or a ``*.localhost`` name, which browsers resolve themselves), or by a name the
user allowed (``xsearch serve --allow-host``).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from collections.abc import Iterable


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is this machine only: 127.0.0.0/8, ::1,
    ``localhost`` and ``*.localhost`` (which browsers resolve themselves)."""
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = _address(name)
    return address is not None and address.is_loopback


def _address(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    # The shorthands inet_aton reads (127.1, 0x7f.1), which curl sends as they are typed:
    # addresses too, with no DNS involved.
    if re.fullmatch(r"(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}", name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def host_name(header: str) -> str:
    """The name of a Host header, without its port, lower case, without a trailing dot."""
    value = header.strip()
    if value.startswith("["):  # [::1]:8000
        return value[1:value.find("]")].lower() if "]" in value else value.lower()
    if value.count(":") == 1:
        value = value.rsplit(":", 1)[0]
    return value.lower().rstrip(".")


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """Whether a request naming ``header`` is answered: any address (no DNS involved), a
    loopback name, or a name allowed."""
    name = host_name(header)
    return name in allowed or _address(name) is not None or is_loopback(name)


class HostCheck:
    """ASGI middleware: a request naming a Host that is not allowed gets a JSON 403."""

    def __init__(self, app, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = dict(scope.get("headers") or ()).get(b"host")
            # A request without a Host header (HTTP/1.0) does not come from a browser.
            if header is not None:
                host = header.decode("latin-1")
                if not host_allowed(host, self.allowed):
                    await _refuse(scope, send, host)
                    return
        await self.app(scope, receive, send)


async def _refuse(scope, send, host: str) -> None:
    message = (f"this server does not answer to the host name {host_name(host)!r}; start it "
               f"with --allow-host {host_name(host)} to allow it")
    if scope["type"] != "http":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
