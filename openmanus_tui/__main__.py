"""``python -m openmanus_tui`` runs the command line, like ``openmanus``."""

from openmanus_tui.launch import main

raise SystemExit(main())
