"""``python -m cms_magic.emulator``: run the local emulator until Ctrl-C."""

from cms_magic.emulator.server import main

raise SystemExit(main())
