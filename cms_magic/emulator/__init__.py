"""The local, signature-verifying CloudMonitor emulator (see :mod:`cms_magic.emulator.server`).

``serve()`` starts one on 127.0.0.1 in a thread, ``embedded()`` is the process's
shared one (what ``--endpoint local`` uses), ``python -m cms_magic.emulator``
runs one until Ctrl-C.
"""

from cms_magic.emulator.server import (
    ADMIN_PREFIX,
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorResponse,
    EmulatorServer,
    Faults,
    demo_credentials,
    embedded,
    embedded_running,
    main,
    serve,
    stop_embedded,
)

__all__ = [
    "ADMIN_PREFIX",
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "Emulator",
    "EmulatorResponse",
    "EmulatorServer",
    "Faults",
    "demo_credentials",
    "embedded",
    "embedded_running",
    "main",
    "serve",
    "stop_embedded",
]
