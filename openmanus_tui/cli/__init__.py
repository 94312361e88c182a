"""The ``openmanus`` command line: one module per command, a small core, shared rendering.

Layout:

- ``core.py``: the parser (built from the command list), ``main``, one-line errors and exit
  codes, dispatch. It names no command.
- ``commands.py``: ``COMMANDS``, the list of command modules, in ``--help`` order.
- ``common.py``: what command modules share: ``Parser``, ``subcommands``, ``handles``,
  ``run_options``, ``with_runtime``, the ``EXIT_*`` codes.
- ``render.py``: terminal rendering of the event stream, approval prompts, transcripts.
- ``workbench.py``: bare ``openmanus [TASK]`` (the Textual workbench) and its options.
- one module per command: ``run``, ``resume``, ``sessions``, ``fork``, ``switch``, ``replay``,
  ``diff``, ``export``, ``import_`` (``import`` is a keyword), ``config``, ``db``, ``mcp``,
  ``git``, ``doctor``, ``serve``.

Adding a command ``openmanus frob``: write ``cli/frob.py`` and add the line ``"frob",`` to
``COMMANDS`` in ``commands.py``. Nothing else changes. The module has a docstring and::

    from openmanus_tui.cli.common import EXIT_OK, handles, subcommands

    def add_parser(sub) -> None:              # sub: the top-level subparsers
        frob = sub.add_parser("frob", help="one line for openmanus --help")
        frob.add_argument("session", metavar="ID")
        handles(frob, handle)                 # needs="runtime" (the default)

    async def handle(args, runtime) -> int:   # runtime: runtime.session.Runtime, open
        session = await runtime.open_session(args.session)
        ...
        return EXIT_OK

A command with actions (``frob list``, ``frob add``) makes them with ``subcommands(frob)``
(``args.action`` names the one given) and calls ``handles`` on each action's parser, with
one handler per action or one for all. What a handler is called with (``handles``'s
``needs``): ``"runtime"``, ``async handle(args, runtime)``, the database opened around it
(``read_only=True`` if it only reads: it then works on a damaged database too);
``"settings"``, ``handle(args, settings)`` (sync or async) with nothing opened, for commands
that work on files or configuration (it may open the runtime itself with ``with_runtime``);
``"args"``, ``handle(args)`` called as is, outside the event loop (only ``serve``).

Rules: a handler returns an exit code (``common.EXIT_*``); a user mistake raises
``errors.ConfigError`` (one line, exit 2); never a traceback. Module top-level imports stay
light (stdlib, rich, ``errors``, ``cli.common``): every ``openmanus`` start, the workbench's
too, imports every command module to build the parser, so import the runtime and other heavy
modules inside the handler. The core is reached only through ``openmanus_tui.runtime``
(``runtime/api.py``; the import-linter contract "front-ends-through-runtime" checks it).
Rendering shared by several commands goes to ``render.py``.
"""

from openmanus_tui.cli.core import build_parser, main, split_task

__all__ = ["build_parser", "main", "split_task"]
