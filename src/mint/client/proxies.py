"""Which proxy, if any, a session or request goes through: ``proxy=`` or the environment.

The environment is read as Python's own ``urllib.request`` (and httpx) read
it, so a program behaves the same under mint as under those:

* ``https_proxy`` for ``wss://`` and ``https://`` targets, ``http_proxy``
  for ``ws://`` and ``http://`` ones, ``all_proxy`` when the scheme's own
  variable is unset; each name in lower or upper case, the lower-case one
  winning when both are set (an empty lower-case one unsets it).  A value
  without a scheme (``proxy.example:3128``) is an ``http://`` proxy.
  Upper-case ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set: in a
  CGI script it may come from a request header ("httpoxy"), as urllib says.
* ``no_proxy`` / ``NO_PROXY``: comma-separated entries for targets reached
  directly.  ``*`` matches every host; a name matches itself and its
  subdomains, with or without a leading dot (``example.com`` and
  ``.example.com`` both match ``api.example.com``); ``host:port`` matches
  that port only; an IP address matches itself, a network (``10.0.0.0/8``)
  every address in it.  Names compare case-insensitively.
* Loopback targets are *not* exempt unless listed: urllib and httpx do not
  exempt them either (``NO_PROXY=localhost,127.0.0.1,::1`` does).

``Client`` reads the environment once, when it is made (its connections are
pooled by proxy, and one client should not switch proxies under its pooled
connections); the module-level ``connect`` makes a client per call, so it
sees the environment of that moment, and ``reconnecting`` of each attempt.
"""

from __future__ import annotations

import enum
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

from mint.client.options import Target
from mint.errors import WebSocketError
from mint.http.proxy import parse_proxy


class _FromEnvironment(enum.Enum):
    FROM_ENVIRONMENT = "from the environment"

    def __repr__(self) -> str:
        return "FROM_ENVIRONMENT"


FROM_ENVIRONMENT = _FromEnvironment.FROM_ENVIRONMENT
"""``proxy=``'s default: the proxy the environment names for each target (see the module)."""

ProxySetting: TypeAlias = str | Literal[_FromEnvironment.FROM_ENVIRONMENT] | None


@dataclass(frozen=True, slots=True)
class ProxyChoice:
    """The proxy for each target: one given outright, or the environment's, read once."""

    given: str | None = None
    from_environment: bool = False
    http: str | None = None
    https: str | None = None
    fallback: str | None = None
    no_proxy: tuple[str, ...] = ()

    def for_target(self, target: Target) -> str | None:
        """The proxy URL to reach ``target`` through, or None for a direct connection."""
        if not self.from_environment:
            return self.given
        proxy = self.https if target.http_scheme == "https" else self.http
        proxy = proxy or self.fallback
        if proxy is None or bypassed(target.host, target.port, self.no_proxy):
            return None
        return proxy


def proxy_choice(setting: ProxySetting, environ: Mapping[str, str] | None = None) -> ProxyChoice:
    """Check ``proxy=`` before any I/O and, for the default, read the environment now.

    A proxy URL given outright, or found in the environment, that cannot
    work raises ``ValueError`` here rather than at the first connect.
    """
    if setting is None:
        return ProxyChoice()
    if isinstance(setting, str):
        parse_proxy(setting)
        return ProxyChoice(given=setting)
    if setting is not FROM_ENVIRONMENT:
        raise ValueError(f"proxy must be a URL string or None, not {setting!r}")
    env = os.environ if environ is None else environ
    cgi = "REQUEST_METHOD" in env
    http = _variable(env, "http_proxy", upper=not cgi)
    https = _variable(env, "https_proxy")
    fallback = _variable(env, "all_proxy")
    for value in (http, https, fallback):
        if value is not None:
            parse_proxy(value)
    no_proxy = _variable(env, "no_proxy") or ""
    entries = tuple(entry.strip().lower() for entry in no_proxy.split(",") if entry.strip())
    return ProxyChoice(None, True, http, https, fallback, entries)


def client_proxies(setting: ProxySetting) -> ProxyChoice:
    """``proxy_choice`` for ``Client``: a bad proxy is a bad option, named as the others are."""
    try:
        return proxy_choice(setting)
    except ValueError as exc:
        raise WebSocketError(str(exc), reason="invalid_argument") from exc


def _variable(env: Mapping[str, str], name: str, *, upper: bool = True) -> str | None:
    """The lower-case variable if set (empty = unset), else the upper-case one."""
    value = env.get(name)
    if value is None and upper:
        value = env.get(name.upper())
    value = (value or "").strip()
    if not value:
        return None
    if name != "no_proxy" and "://" not in value:
        value = f"http://{value}"
    return value


def bypassed(host: str, port: int, entries: tuple[str, ...]) -> bool:
    """Whether ``no_proxy``'s ``entries`` send ``host``:``port`` around the proxy."""
    host = host.lower().strip("[]").rstrip(".")
    address = _address(host)
    for entry in entries:
        if entry == "*":
            return True
        name, entry_port = _split_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if address is not None:
            if _address_matches(address, name):
                return True
            continue
        name = name.lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    """``host:port``, ``[v6]:port`` or a bare host, address or network."""
    if entry.startswith("["):
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return name, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, int(port) if port.isdigit() else None
    return entry, None  # a bare name, or an IPv6 address without brackets


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _address_matches(address: ipaddress.IPv4Address | ipaddress.IPv6Address, entry: str) -> bool:
    try:
        network = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return address in network


__all__ = [
    "FROM_ENVIRONMENT",
    "ProxyChoice",
    "ProxySetting",
    "bypassed",
    "client_proxies",
    "proxy_choice",
]
