"""``python -m cms_magic.emulator`` and ``cms-event emulator``: serve until Ctrl-C or SIGTERM.

Besides the upload path it serves, on the same port, STS (``AssumeRole``,
``AssumeRoleWithOIDC``), a credentials URI (``/credentials``) and ECS instance metadata
(``/latest/...``); ``--sts-lifetime SECONDS`` is how long what they mint lives (default
3600), ``--metadata-v1`` lets the metadata answer without an IMDSv2 token and
``--metadata-role NAME`` names its RAM role. The banner prints each URL.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cms_magic.credentials.static import Credentials
from cms_magic.emulator.minted import DEFAULT_LIFETIME_SECONDS
from cms_magic.emulator.routes import DEFAULT_METADATA_ROLE
from cms_magic.emulator.server import (
    ADMIN_PREFIX,
    ADMIN_TOKEN_HEADER,
    RemoteBindWarning,
    check_bind_host,
    serve,
)
from cms_magic.emulator.service import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, demo_credentials
from cms_magic.emulator.store import MemoryStore, SqliteStore
from cms_magic.errors import ConfigError, CredentialsError
from cms_magic.protocol import DEFAULT_QPS, UPLOAD_PATH

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m cms_magic.emulator``: serve until Ctrl-C or SIGTERM, then return 0."""
    parser = argparse.ArgumentParser(
        prog="python -m cms_magic.emulator",
        description=(
            "Run a local, signature-verifying CloudMonitor custom-event endpoint "
            f"(POST {UPLOAD_PATH}) for demos and tests."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback, so other hosts can reach the emulator",
    )
    parser.add_argument("--port", type=int, default=0, help="port (default: 0, any free port)")
    parser.add_argument(
        "--access-key-id", help="AccessKeyId to accept (default: the public demo pair)"
    )
    parser.add_argument(
        "--access-key-secret",
        help="its AccessKeySecret (visible to local users in the process list: test keys only)",
    )
    parser.add_argument(
        "--qps",
        type=float,
        default=DEFAULT_QPS,
        help="requests per second per AccessKeyId, 0 for no quota (default: %(default)g)",
    )
    parser.add_argument(
        "--sts-lifetime",
        type=float,
        default=DEFAULT_LIFETIME_SECONDS,
        metavar="SECONDS",
        help="how long credentials minted by the STS, credentials URI and metadata live "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--metadata-v1",
        action="store_true",
        help="let the instance metadata answer without an IMDSv2 token (default: refused)",
    )
    parser.add_argument(
        "--metadata-role",
        default=DEFAULT_METADATA_ROLE,
        metavar="NAME",
        help="the RAM role the instance metadata serves (default: %(default)s)",
    )
    parser.add_argument(
        "--db",
        type=Path,
        metavar="FILE",
        help="keep the events in this SQLite file (created if missing; kept across restarts, "
        "so it grows a local history to explore with the read-back API); default: in memory",
    )
    parser.add_argument(
        "--lag",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="events become visible to the read-back actions this long after they are stored "
        "(imitates the service's index lag; default: 0)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.lag < float("inf"):
        parser.error(f"--lag must be a number of seconds >= 0, got {args.lag:g}")
    if (args.access_key_id is None) != (args.access_key_secret is None):
        parser.error("give both --access-key-id and --access-key-secret, or neither (demo pair)")
    if not args.qps >= 0:
        parser.error(f"--qps must be >= 0, got {args.qps:g}")
    if not 0 < args.sts_lifetime < float("inf"):
        parser.error(f"--sts-lifetime must be a number of seconds > 0, got {args.sts_lifetime:g}")
    if not args.metadata_role.strip() or "/" in args.metadata_role:
        parser.error(f"--metadata-role must be a RAM role name, got {args.metadata_role!r}")
    if args.access_key_id is None:
        credentials = demo_credentials()
        shown_id, shown_secret = DEMO_ACCESS_KEY_ID, f"{DEMO_ACCESS_KEY_SECRET} (public demo pair)"
    else:
        try:
            credentials = Credentials(
                args.access_key_id, args.access_key_secret, source="command line"
            )
        except CredentialsError as exc:
            parser.error(str(exc))
        shown_id = credentials.access_key_id
        # masked entirely: even a few characters of a real secret are too many
        shown_secret = f"******** ({len(credentials.access_key_secret)} characters, as given)"
    try:
        warning = check_bind_host(args.host, allow_remote=args.allow_remote)
    except ConfigError:
        print(
            f"error: --host {args.host!r} is not a loopback address; the emulator listens "
            "only on loopback (it accepts a public demo key) unless you also pass "
            "--allow-remote",
            file=sys.stderr,
        )
        return 2
    if warning is not None:
        print(f"warning: {warning}", file=sys.stderr)
    try:
        store = SqliteStore(args.db, delay=args.lag) if args.db else MemoryStore(delay=args.lag)
    except ConfigError as exc:
        print(f"error: --db {str(args.db)!r}: {exc}", file=sys.stderr)
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RemoteBindWarning)  # printed just above
            server = serve(
                args.host,
                args.port,
                credentials=credentials,
                qps=args.qps,
                allow_remote=args.allow_remote,
                sts_lifetime=args.sts_lifetime,
                metadata_v1=args.metadata_v1,
                metadata_role=args.metadata_role,
                store=store,
            )
    except OSError as exc:
        store.close()
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    restore = _stop_on_signals(stop)
    try:
        quota = f"{args.qps:g} requests/s per AccessKeyId" if args.qps else "off"
        print(f"cms_magic emulator listening on {server.url}", flush=True)
        print(f"  upload:            POST {server.url}{UPLOAD_PATH}")
        print(f"  AccessKeyId:       {shown_id}")
        print(f"  AccessKeySecret:   {shown_secret}")
        print(f"  quota:             {quota}")
        v1 = "IMDSv1 allowed" if args.metadata_v1 else "IMDSv2 only"
        print(f"  STS:               {server.sts_url} (AssumeRole, AssumeRoleWithOIDC)")
        print(f"  credentials URI:   GET {server.credentials_uri}")
        print(f"  instance metadata: {server.metadata_url}/latest/ (role ", end="")
        print(f"{args.metadata_role}, {v1})")
        print(f"  minted lifetime:   {args.sts_lifetime:g} s")
        print("  read-back:         DescribeCustomEventAttribute/Count/Histogram, PutCustomEvent")
        held = f"{args.db} ({store.count():,} events held)" if args.db else "in memory"
        print(f"  events:            {held}; visible after {args.lag:g} s")
        print(f"  admin:             GET {ADMIN_PREFIX}events, {ADMIN_PREFIX}requests, ", end="")
        print(f"{ADMIN_PREFIX}health, {ADMIN_PREFIX}faults; ", end="")
        print(f"POST {ADMIN_PREFIX}reset, {ADMIN_PREFIX}faults")
        print(f"  admin token:       {ADMIN_TOKEN_HEADER}: {server.admin_token}")
        print("                     (every admin endpoint but health wants it, or a signature)")
        print("Press Ctrl-C to stop.", flush=True)
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        server.stop()
        store.close()
    print("cms_magic emulator stopped", file=sys.stderr, flush=True)
    return 0


def _stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Make SIGINT and SIGTERM set ``stop``; return a function that restores the handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, lambda _signum, _frame: stop.set())

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    return restore
