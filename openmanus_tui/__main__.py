"""``python -m openmanus_tui`` runs the command line."""

from openmanus_tui.cli import main

raise SystemExit(main())
