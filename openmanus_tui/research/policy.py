"""The network policy: which URLs ``web_fetch``, ``openmanus fetch`` and ``search_info``
results may reach. The one place that decides; every fetch hop and every search hit asks it.

Three rules, from the ``[network]`` settings:

* ``blocked_domains``: a host equal to, or a subdomain of, a listed domain is refused.
* ``allowed_domains``: when the list is not empty, only hosts under a listed domain pass.
* ``allow_private_addresses`` (false by default): every address a host resolves to must be a
  public one. Loopback, link-local, private (RFC 1918), unique-local, shared (CGNAT),
  unspecified, multicast, reserved and documentation ranges are refused, and so are IPv6
  forms that carry such an IPv4 address (v4-mapped, NAT64, 6to4, Teredo). This is the SSRF
  guard: a page cannot send the fetcher to the machine's own services or a cloud metadata
  endpoint, not by a redirect either.

:meth:`NetworkPolicy.check_url` is the cheap check without DNS (scheme, host, domain lists, an IP
literal's range): search hits use it. :meth:`NetworkPolicy.resolve` adds the DNS answer and
returns the addresses the fetcher must connect to (it connects to those and no others, so a
second DNS answer cannot differ from the checked one). A refusal is a :class:`PolicyRefusal`
whose text is one line naming the URL and the rule.

Tests give the policy a ``resolver`` (a host → addresses function) so that no real DNS is ever
asked; the fixture web server maps its virtual host names that way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from openmanus_tui.errors import OpenManusError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``await resolver(host, port)`` → the host's addresses as text; raises ``OSError`` when none."""

SCHEMES = ("http", "https")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class PolicyRefusal(OpenManusError):
    """A URL the network policy does not let through; ``str()`` is the one-line reason."""

    def __init__(self, message: str, *, rule: str) -> None:
        super().__init__(message, error_class="security")
        self.rule = rule


class ResolveError(OpenManusError):
    """The host's name has no address (offline, a typo); one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_class="permanent")


def host_of(url: str) -> str:
    """The URL's host, lower-cased, without brackets or a trailing dot, international names
    in their ASCII (IDNA) form, so domain lists match either spelling ("" if it has none)."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return ""


def under(host: str, domain: str) -> bool:
    """``host`` is ``domain`` or one of its subdomains (suffix match on whole labels)."""
    return host == domain or host.endswith("." + domain)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_class(address: str | IPAddress) -> str | None:
    """Why an address is not public ("loopback", "private", …), or None when it is."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_v4(ip)
        if inner is not None:
            why = address_class(inner)
            return f"{why} (inside the IPv6 address {ip})" if why else None
        if ip.scope_id:
            return "link-local"
    checks: list[tuple[bool, str]] = [
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv6Address) and ip in ipaddress.ip_network("fc00::/7"),
         "unique-local"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED, "shared (carrier-grade NAT)"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not a public address"),
    ]  # fmt: skip
    return next((why for hit, why in checks if hit), None)


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """Where one checked request goes: the URL as asked, and the addresses to connect to."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


@dataclass
class NetworkPolicy:
    allowed_domains: list[str] = field(default_factory=list)
    blocked_domains: list[str] = field(default_factory=list)
    allow_private_addresses: bool = False
    resolver: Resolver = system_resolver

    @classmethod
    def from_settings(cls, network: Any, *, resolver: Resolver | None = None) -> NetworkPolicy:
        """From a ``config.NetworkSettings`` (the ``[network]`` section)."""
        return cls(
            allowed_domains=list(network.allowed_domains),
            blocked_domains=list(network.blocked_domains),
            allow_private_addresses=bool(network.allow_private_addresses),
            resolver=resolver or system_resolver,
        )

    def with_allowed(self, domains: Iterable[str]) -> NetworkPolicy:
        """A copy whose allow-list also holds ``domains`` (``research --allow-domain``)."""
        extra = [d.strip().lower().strip(".") for d in domains if d.strip()]
        return NetworkPolicy(
            [*self.allowed_domains, *extra], list(self.blocked_domains),
            self.allow_private_addresses, self.resolver,
        )  # fmt: skip

    def describe(self) -> str:
        parts = [
            f"allowed: {', '.join(self.allowed_domains) or 'any domain'}",
            f"blocked: {', '.join(self.blocked_domains) or 'none'}",
            f"private addresses: {'allowed' if self.allow_private_addresses else 'refused'}",
        ]
        return "; ".join(parts)

    # ---- checks -------------------------------------------------------------------------
    def check_url(self, url: str) -> str:
        """The host of a URL the policy lets through before DNS; ``PolicyRefusal`` if not."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise PolicyRefusal(f"refused {url!r}: not a valid URL ({exc})", rule="url") from None
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise PolicyRefusal(
                f"refused {url!r}: only http and https URLs are fetched", rule="scheme"
            )
        host = host_of(url)
        if not host:
            raise PolicyRefusal(f"refused {url!r}: the URL has no host", rule="url")
        if parts.username or parts.password:
            raise PolicyRefusal(
                f"refused {url!r}: URLs with a user name or password are not fetched", rule="url"
            )
        if port == 0:
            raise PolicyRefusal(f"refused {url!r}: port 0", rule="url")
        blocked = next((d for d in self.blocked_domains if under(host, d)), None)
        if blocked:
            raise PolicyRefusal(
                f"refused {url}: {host} is under the blocked domain {blocked} "
                "(network.blocked_domains)",
                rule="blocked_domains",
            )
        if self.allowed_domains and not any(under(host, d) for d in self.allowed_domains):
            raise PolicyRefusal(
                f"refused {url}: {host} is not under an allowed domain "
                f"({', '.join(self.allowed_domains)}; network.allowed_domains)",
                rule="allowed_domains",
            )
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self._check_address(url, host, literal)
        return host

    def _check_address(self, url: str, host: str, ip: IPAddress) -> None:
        if self.allow_private_addresses:
            return
        why = address_class(ip)
        if why:
            said = "is" if str(ip) == host else f"resolves to {ip}, which is"
            raise PolicyRefusal(
                f"refused {url}: {host} {said} {why}; set "
                "network.allow_private_addresses = true to allow it",
                rule="private_address",
            )

    async def resolve(self, url: str) -> Target:
        """Check ``url`` fully, DNS included: every address must pass, not only the first."""
        host = self.check_url(url)
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            try:
                addresses = await self.resolver(host, port)
            except (OSError, UnicodeError) as exc:
                raise ResolveError(
                    f"cannot fetch {url}: the name {host} does not resolve ({exc})"
                ) from None
        if not addresses:
            raise ResolveError(f"cannot fetch {url}: the name {host} has no address")
        for address in addresses:
            self._check_address(url, host, ipaddress.ip_address(address.split("%")[0]))
        return Target(url, scheme, host, port, tuple(addresses))


def static_resolver(hosts: dict[str, list[str] | str], *, fallback: bool = False) -> Resolver:
    """A resolver that answers the names in ``hosts`` itself (like ``/etc/hosts``; the answers
    are still checked). Other names: the system's DNS with ``fallback``, else an error (tests:
    no real DNS is ever asked)."""
    table = {
        k.lower().rstrip("."): [v] if isinstance(v, str) else list(v) for k, v in hosts.items()
    }

    async def resolve(host: str, port: int) -> list[str]:
        found = table.get(host.lower().rstrip("."))
        if found is not None:
            return found
        if fallback:
            return await system_resolver(host, port)
        raise OSError(f"unknown host {host!r} (not in the resolver's table)")

    return resolve
