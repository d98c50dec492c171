"""The local, signature-verifying CloudMonitor emulator.

The rooms, in the order a request meets them:

- :mod:`~cms_magic.emulator.server`: HTTP/1.1 on loopback (:class:`EmulatorServer`,
  :func:`serve`), holding connections as :mod:`~cms_magic.emulator.connections` says
  (one reader thread, a bounded pool of handlers, deadlines for request heads);
- :mod:`~cms_magic.emulator.binding`: loopback unless ``allow_remote``, and the limits' checks;
- :mod:`~cms_magic.emulator.handler`: one request on a connection (limits, faults acted out);
- :mod:`~cms_magic.emulator.routes`: which handler answers a request on the one port;
- :mod:`~cms_magic.emulator.admin`: the admin endpoints, for the admin token or a
  signed request;
- :mod:`~cms_magic.emulator.openapi`: ``GET|POST /`` with an action, the action table;
  :mod:`~cms_magic.emulator.verify` checks its RPC v2 / ACS3 signatures;
- :mod:`~cms_magic.emulator.sts`: STS ``AssumeRole`` / ``AssumeRoleWithOIDC``;
- :mod:`~cms_magic.emulator.endpoints`: a credentials URI (``/credentials``) and ECS
  instance metadata (``/latest/...``);
- :mod:`~cms_magic.emulator.minted`: the temporary keys minted, shared with the upload check;
- :mod:`~cms_magic.emulator.service`: the upload handler, no I/O (:class:`Emulator`,
  :class:`EmulatorResponse`, the demo credentials);
- :mod:`~cms_magic.emulator.faults`: the faults it can inject (:class:`Faults`);
- :mod:`~cms_magic.emulator.validation`: its own checks of headers, signature and events;
- :mod:`~cms_magic.emulator.store`: where accepted events and the request log are kept;
- :mod:`~cms_magic.emulator.embedded`: the process's shared one (what ``local`` means,
  :func:`embedded`);
- :mod:`~cms_magic.emulator.cli`: ``python -m cms_magic.emulator`` and
  ``cms-event emulator`` (:func:`main`), serving until Ctrl-C.
"""

from cms_magic.emulator.cli import main
from cms_magic.emulator.embedded import embedded, embedded_running, stop_embedded
from cms_magic.emulator.faults import Faults
from cms_magic.emulator.server import (
    ADMIN_PREFIX,
    ADMIN_TOKEN_HEADER,
    EmulatorServer,
    RemoteBindWarning,
    serve,
)
from cms_magic.emulator.service import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Emulator,
    EmulatorResponse,
    demo_credentials,
)

__all__ = [
    "ADMIN_PREFIX",
    "ADMIN_TOKEN_HEADER",
    "DEMO_ACCESS_KEY_ID",
    "DEMO_ACCESS_KEY_SECRET",
    "Emulator",
    "EmulatorResponse",
    "EmulatorServer",
    "Faults",
    "RemoteBindWarning",
    "demo_credentials",
    "embedded",
    "embedded_running",
    "main",
    "serve",
    "stop_embedded",
]
