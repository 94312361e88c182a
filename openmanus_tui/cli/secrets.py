"""``openmanus secrets set|list|rm``: encrypted secrets the config names as ``"secret:NAME"``.

The store is ``secret_store.py`` (Fernet; the key in the system keyring or a 0600 file). A
value is read from a prompt that does not echo at a terminal, else from standard input
(``printf %s "$KEY" | openmanus secrets set NAME``), never from the command line, where ``ps``
and the shell's history would see it. The settings are loaded without resolving references,
so a secret the config already names can be stored.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from openmanus_tui.cli.common import EXIT_OK, handles, subcommands
from openmanus_tui.errors import ConfigError


def add_parser(sub: Any) -> None:
    secrets = sub.add_parser("secrets", help="store, list or remove encrypted secrets")
    ssub = subcommands(secrets)
    put = ssub.add_parser(
        "set", help="store a secret (typed at a prompt, or read from standard input)"
    )
    put.add_argument("name", metavar="NAME")
    handles(put, set_cmd, needs="settings", resolve_secrets=False)
    listing = ssub.add_parser("list", help="the stored secrets' names (never their values)")
    listing.add_argument("--json", action="store_true")
    handles(listing, list_cmd, needs="settings", resolve_secrets=False)
    rm = ssub.add_parser("rm", help="remove a stored secret")
    rm.add_argument("name", metavar="NAME")
    handles(rm, rm_cmd, needs="settings", resolve_secrets=False)


def _store(settings: Any) -> Any:
    from openmanus_tui.secret_store import SecretStore

    return SecretStore(settings.resolved_data_dir, use_keyring=settings.secrets.keyring)


def read_secret_value(name: str) -> str:
    """The value: typed at a prompt without echo when standard input is a terminal, else
    all of standard input without its final line break."""
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        import termios

        fd = stdin.fileno()
        old = termios.tcgetattr(fd)
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~termios.ECHO
        sys.stderr.write(f"value for {name} (not shown): ")
        sys.stderr.flush()
        try:
            termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
            line = stdin.readline()
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, old)
            sys.stderr.write("\n")
        return line.rstrip("\r\n")
    data = stdin.read() if stdin is not None else ""
    return data[:-1] if data.endswith("\n") else data


def set_cmd(args: argparse.Namespace, settings: Any) -> int:
    from openmanus_tui.secret_store import check_name

    check_name(args.name)  # before asking for the value
    value = read_secret_value(args.name)
    if not value.strip():
        raise ConfigError(f"secret {args.name!r}: the value is empty; nothing stored")
    store = _store(settings)
    store.set(args.name, value)
    print(f"stored secret {args.name} (key: {store.key_location()}); "
          f"refer to it as \"secret:{args.name}\"")
    return EXIT_OK


def rm_cmd(args: argparse.Namespace, settings: Any) -> int:
    _store(settings).remove(args.name)
    print(f"removed secret {args.name}")
    return EXIT_OK


def list_cmd(args: argparse.Namespace, settings: Any) -> int:
    store = _store(settings)
    entries = store.list()
    if args.json:
        print(json.dumps([{"name": e.name, "updated": e.updated} for e in entries]))
        return EXIT_OK
    if not entries:
        print("no secrets stored")
        return EXIT_OK
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.updated))
        print(f"{entry.name}  (set {when})")
    print(f"key: {store.key_location()}")
    return EXIT_OK
