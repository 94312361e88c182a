"""A loopback web server with a small corpus, and the hooks that let the real fetch path reach
it without the internet (for ``web_fetch``, ``openmanus fetch``, the research graph's tests).

``WebFixture`` serves ``tests/web_corpus/<host>/…`` on 127.0.0.1 (a threaded ``http.server``),
choosing the folder by the request's ``Host`` header; requests to 127.0.0.1 itself get
``loopback/``. Virtual hosts look public to the network policy:

* :meth:`WebFixture.resolver` answers the corpus names with public-looking addresses (and
  nothing else: no real DNS is ever asked);
* :meth:`WebFixture.transport` is an ``httpx`` transport that sends a connection the policy
  allowed to one of those addresses to the loopback server instead (``https`` becomes plain
  ``http`` there), keeps the ``Host`` header, and refuses any other destination — except the
  server itself, for tests that allow private addresses.

So the policy, the redirect checks, the extraction and the storage all run for real. Use it
through the ``web`` fixture in ``conftest.py`` (or ``with WebFixture() as web:``)::

    service = web.service(db)                       # a SourceService wired to the fixture
    fetched = await service.fetch(web.url("stats.energy-agency.gov", "/report-2024.html"))
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

CORPUS = Path(__file__).parent / "web_corpus"
DOMAINS_FILE = CORPUS / "domains.toml"

NAMES = (
    "stats.energy-agency.gov", "news.dailyclarion.com", "solar-tips-hub.com",
    "wiki.opensolar.org", "journal.example.edu", "redirector.example.net", "blocked.example.com",
)  # fmt: skip
# Public-looking addresses the fixture's resolver gives these names; nothing ever connects to
# them: the transport sends those connections to the loopback server.
PUBLIC = {name: f"93.184.{i}.{i + 10}" for i, name in enumerate(NAMES, start=1)}

PDF_TEXT = [
    "Photovoltaic module efficiency in 2023: a field study",
    "doi: 10.5555/pv.2023.117",
    "Methods",
    "We measured 412 installed modules across 9 sites.",
    "The median module efficiency was 21.4 percent.",
]


def make_pdf(lines: list[str], *, title: str, author: str, created: str) -> bytes:
    """A one-page PDF with Helvetica text and an Info dictionary (``created``: YYYYMMDD)."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    ops = ["BT", "/F1 11 Tf", "14 TL", "72 740 Td", *[f"({esc(ln)}) Tj T*" for ln in lines], "ET"]
    stream = "\n".join(ops).encode("latin-1")
    info = f"<< /Title ({esc(title)}) /Author ({esc(author)}) /CreationDate (D:{created}000000Z) >>"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        info.encode("latin-1"),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objs) + 1,
        xref,
    )
    return bytes(out)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].strip("[]").lower()
        path = self.path.split("?")[0]
        self.server.requests.append((host, self.path))
        failing = self.server.failing.get((host, path), self.server.failing.get((host, None)))
        if failing is not None:  # a host that keeps failing (circuit breaker tests)
            self.send_error(failing)
            return
        redirect = self.server.redirects.get((host, path))
        if redirect is not None:
            status, location = redirect
            self.send_response(status)
            self.send_header("Location", location.format(port=self.server.server_port))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body, content_type = self.server.page(host, path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str]] = []
        self.extra: dict[tuple[str, str], tuple[bytes, str]] = {}
        # (host, path or None for every path) → the status it answers with, every time.
        self.failing: dict[tuple[str, str | None], int] = {}
        self.redirects: dict[tuple[str, str], tuple[int, str]] = {
            ("news.dailyclarion.com", "/moved"): (301, "/solar-boom.html"),
            ("redirector.example.net", "/to-loopback"): (302, "http://127.0.0.1:{port}/internal"),
            ("redirector.example.net", "/to-metadata"): (
                302,
                "http://169.254.169.254/latest/meta-data/",
            ),
            ("redirector.example.net", "/to-news"): (
                302,
                "https://news.dailyclarion.com/solar-boom.html",
            ),
            ("redirector.example.net", "/loop"): (302, "/loop"),
        }
        self.extra[("journal.example.edu", "/paper.pdf")] = (
            make_pdf(PDF_TEXT, title="PV efficiency field study", author="A. Researcher",
                     created="20230915"),
            "application/pdf",
        )  # fmt: skip

    def page(self, host: str, path: str) -> tuple[bytes | None, str]:
        if (host, path) in self.extra:
            return self.extra[(host, path)]
        folder = "loopback" if host in ("127.0.0.1", "localhost") else host
        rel = path.strip("/") or "index.html"
        if "." not in rel.rsplit("/", 1)[-1]:
            rel += ".html"
        file = (CORPUS / folder / rel).resolve()
        if not file.is_relative_to(CORPUS) or not file.is_file():
            return None, ""
        kind = "text/html; charset=utf-8" if file.suffix == ".html" else "text/plain"
        return file.read_bytes(), kind


class _LoopbackTransport(httpx.AsyncBaseTransport):
    """Connections to the fixture's stand-in addresses go to the loopback server."""

    def __init__(self, port: int, addresses: set[str]) -> None:
        self.port = port
        self.addresses = addresses
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.addresses:
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=self.port)
        elif not (host == "127.0.0.1" and request.url.port == self.port):
            raise httpx.ConnectError(f"the test transport has no route to {host}")
        request.extensions.pop("sni_hostname", None)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class WebFixture:
    def __init__(self) -> None:
        self.server = _Server()
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), daemon=True
        )

    def __enter__(self) -> WebFixture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def requests(self) -> list[tuple[str, str]]:
        """(host, path) of every request the server answered, in order."""
        return self.server.requests

    def url(self, host: str, path: str = "/", scheme: str = "https") -> str:
        if host in ("127.0.0.1", "loopback"):
            return f"http://127.0.0.1:{self.port}{path}"
        return f"{scheme}://{host}{path}"

    def serve(self, host: str, path: str, body: bytes, content_type: str = "text/html") -> None:
        """Serve one more page (a test's own)."""
        self.server.extra[(host, path)] = (body, content_type)

    def fail(self, host: str, status: int = 503, path: str | None = None) -> None:
        """Make ``host`` answer every request (for ``path`` only, when given) with ``status``,
        until :meth:`heal`; the requests are still counted in ``requests``."""
        self.server.failing[(host, path)] = status

    def heal(self, host: str) -> None:
        """``host`` answers normally again."""
        for key in [k for k in self.server.failing if k[0] == host]:
            del self.server.failing[key]

    def resolver(self) -> Any:
        from openmanus_tui.research.policy import static_resolver

        return static_resolver(dict(PUBLIC))

    def transport(self) -> httpx.AsyncBaseTransport:
        return _LoopbackTransport(self.port, set(PUBLIC.values()))

    def policy(self, **kwargs: Any) -> Any:
        from openmanus_tui.research.policy import NetworkPolicy

        return NetworkPolicy(resolver=self.resolver(), **kwargs)

    def service(self, db: Any, *, policy: Any = None, **kwargs: Any) -> Any:
        """A ``SourceService`` on ``db`` whose fetches reach this server (and nothing else),
        scoring with the corpus's domain list."""
        from openmanus_tui.research.registry import Scorer
        from openmanus_tui.research.scoring import domain_classes
        from openmanus_tui.research.service import SourceService

        kwargs.setdefault("scorer", Scorer(domain_classes(DOMAINS_FILE)))
        return SourceService(
            db, policy=policy or self.policy(), transport=self.transport(), **kwargs
        )
