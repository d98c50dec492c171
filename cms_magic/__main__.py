"""``python -m cms_magic``: the ``cms-event`` command line."""

from cms_magic.ui.cli import main

raise SystemExit(main())
