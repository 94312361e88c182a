"""Reading one URL over HTTP(S) through the network policy: bounded, redirect by redirect.

:func:`http_get` asks the policy about every hop (the first URL and each redirect target), then
connects to the address the policy checked — the request goes to that IP with the original
``Host`` header and TLS server name, so a second DNS answer cannot send it elsewhere (DNS
rebinding). Redirects are followed by hand, at most ``max_redirects``; the body is streamed and
cut at ``max_bytes`` (counted after decompression); the whole fetch, all hops, fits in
``timeout`` seconds. Proxies from the environment are not used: a proxy would resolve names
itself, past the policy.

Failures are :class:`FetchError` (one line: what and why) or the policy's ``PolicyRefusal``.
Tests pass ``transport`` (an ``httpx.AsyncBaseTransport``) to route the checked connections to
their loopback fixture server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from openmanus_tui.errors import OpenManusError
from openmanus_tui.research.policy import (
    NetworkPolicy,
    PolicyRefusal,
    ResolveError,
    Target,
    address_class,
)

USER_AGENT = "openmanus-tui/web_fetch (+https://github.com/openmanus)"
REDIRECTS = (301, 302, 303, 307, 308)
DEFAULT_TIMEOUT = 15.0
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_REDIRECTS = 5


class FetchError(OpenManusError):
    """A fetch that failed for a reason other than the policy; ``str()`` is one line.
    ``host_failure``: the host itself failed (no connection, a dropped or timed-out answer,
    HTTP 5xx), which counts against its circuit breaker; a 404 or a bad redirect does not."""

    def __init__(
        self, message: str, *, transient: bool = False, host_failure: bool = False
    ) -> None:
        super().__init__(message, error_class="transient" if transient else "permanent")
        self.host_failure = host_failure


@dataclass
class RawPage:
    """What the server sent for the last hop."""

    url: str  # as asked
    final_url: str  # after redirects
    status: int
    content_type: str  # the media type, lower-case, without parameters
    charset: str | None
    body: bytes
    truncated: bool  # the body was cut at max_bytes
    hops: list[str] = field(default_factory=list)  # every URL asked, in order
    elapsed_ms: float = 0.0
    via_private: bool = False  # a hop went to a non-public address (the policy allowed it)


def _pinned_url(target: Target) -> str:
    """The URL with its host replaced by the checked address (the port kept)."""
    parts = urlsplit(target.url)
    address = target.addresses[0].split("%")[0]
    if isinstance(ipaddress.ip_address(address), ipaddress.IPv6Address):
        address = f"[{address}]"
    netloc = f"{address}:{target.port}"
    return urlunsplit((target.scheme, netloc, parts.path or "/", parts.query, ""))


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


async def _one_hop(
    client: httpx.AsyncClient, target: Target, max_bytes: int
) -> tuple[httpx.Response, bytes, bool]:
    request = client.build_request(
        "GET",
        _pinned_url(target),
        headers={"Host": _host_header(target)},
        extensions={"sni_hostname": target.host},
    )
    response = await client.send(request, stream=True)
    chunks: list[bytes] = []
    size = 0
    cut = False
    try:
        if response.status_code not in REDIRECTS:
            async for chunk in response.aiter_bytes():  # decoded: the cap counts what we keep
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    cut = True
                    break
    finally:
        await response.aclose()
    body = b"".join(chunks)
    return response, body[:max_bytes], cut


async def http_get(
    url: str,
    policy: NetworkPolicy,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_redirects: int = DEFAULT_MAX_REDIRECTS,
    transport: httpx.AsyncBaseTransport | None = None,
) -> RawPage:
    """GET ``url`` through ``policy`` (see the module docstring)."""
    start = time.perf_counter()
    hops: list[str] = []
    via_private = False
    try:
        async with asyncio.timeout(timeout):
            async with httpx.AsyncClient(
                transport=transport,
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "text/html,application/xhtml+xml,application/pdf,text/plain;q=0.9,"
                    "*/*;q=0.5",
                },
            ) as client:
                current = url
                while True:
                    try:
                        target = await policy.resolve(current)
                    except PolicyRefusal as exc:
                        if hops:  # say where the redirect came from
                            raise PolicyRefusal(
                                f"{exc} (a redirect from {hops[-1]})", rule=exc.rule
                            ) from None
                        raise
                    hops.append(current)
                    via_private = via_private or any(map(address_class, target.addresses))
                    response, body, cut = await _one_hop(client, target, max_bytes)
                    if response.status_code in REDIRECTS:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(
                                f"{current} answered HTTP {response.status_code} without a "
                                "Location"
                            )
                        if len(hops) > max_redirects:
                            raise FetchError(
                                f"{url}: more than {max_redirects} redirects "
                                "(network.max_redirects)"
                            )
                        current = urljoin(current, location.strip())
                        continue
                    break
    except TimeoutError:
        raise FetchError(
            f"{url}: no complete answer within {timeout:g} s", transient=True, host_failure=True
        ) from None
    except ResolveError as exc:
        raise FetchError(str(exc)) from None
    except httpx.HTTPError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        transient = isinstance(exc, httpx.TimeoutException)
        raise FetchError(
            f"{hops[-1] if hops else url}: {detail}", transient=transient,
            # Refused or dropped connections, timeouts, broken answers: the host is failing.
            host_failure=isinstance(exc, httpx.TransportError),
        ) from None
    status = response.status_code
    if status >= 400:
        raise FetchError(
            f"{current} answered HTTP {status}", transient=status == 429 or status >= 500,
            host_failure=status >= 500,
        )
    content_type = response.headers.get("content-type", "")
    media = content_type.split(";")[0].strip().lower()
    charset = None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return RawPage(
        url=url,
        final_url=current,
        status=status,
        content_type=media,
        charset=charset,
        body=body,
        truncated=cut,
        hops=hops,
        elapsed_ms=(time.perf_counter() - start) * 1000,
        via_private=via_private,
    )
