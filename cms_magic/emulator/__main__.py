"""``python -m cms_magic.emulator``: run the local emulator until Ctrl-C."""

from cms_magic.emulator.cli import main

raise SystemExit(main())
