"""``%cms SUBCOMMAND``: the magic's helpers (regions, settings, identity, emulator, last, panel)
and the read-back commands (events, count, histogram: :mod:`cms_magic.ui.magic.readback`).

Each helper reads what the magic is configured with through :class:`Configured`
(so this module never imports the magic class) and asks the core the same
questions a send would: :func:`cms_magic.targets.resolve_target` for the
target, :meth:`~cms_magic.targets.Target.credentials` for the credentials.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol

from IPython.core.error import UsageError

from cms_magic.errors import CmsError, CredentialsError
from cms_magic.identity import describe_credentials
from cms_magic.ui.magic.inputs import frame_named
from cms_magic.ui.magic.report import out
from cms_magic.ui.options import flag_subject

if TYPE_CHECKING:
    from cms_magic.identity import AnyCredentials
    from cms_magic.settings import Setting
    from cms_magic.targets import Target

__all__ = [
    "CMS_HELP",
    "READ_SUBCOMMANDS",
    "SETTING_NAMES",
    "SUBCOMMANDS",
    "Configured",
    "run_subcommand",
]

CMS_HELP: Final = """\
%cms SUBCOMMAND: cms_magic's helpers.

  %cms regions                   the region catalog (a DataFrame)
  %cms config                    effective settings, each with its source
  %cms whoami                    the target and the credentials it would use (id masked)
  %cms emulator start|stop|status  the local emulator (--endpoint local)
  %cms last                      the result of the latest send (also after Ctrl-C),
                                 or the send still running (its SendJob)
  %cms panel [NAME]              the point-and-click panel (on the DataFrame NAME)
  %cms events [DEST] --name X --since 1h [--until T] [--group-id N] [--search WORDS]
              [--limit N]        the events CloudMonitor holds, as a DataFrame (into DEST)
  %cms count [DEST] [filters] [--by-name]
                                 how many events match (per event name with --by-name)
  %cms histogram [DEST] [filters] [--level LEVEL]
                                 events per time bucket, as a chart (the frame into DEST)
  %cms help                      this text

Read-back targets: --endpoint local|URL, --region ID, --profile NAME (else as a send);
%cms events --help lists every filter.

Send events with %%cms_event (options: %%cms_event?).
Settings: %config CmsMagic (list), %config CmsMagic.region = "cn-hangzhou"."""

SUBCOMMANDS: Final = (
    "regions",
    "config",
    "whoami",
    "emulator",
    "last",
    "panel",
    "events",
    "count",
    "histogram",
    "help",
)
#: The read-back subcommands (issue 15).
READ_SUBCOMMANDS: Final = ("events", "count", "histogram")

#: The settings ``%cms config`` lists, in order.
SETTING_NAMES: Final = (
    "endpoint",
    "region",
    "internal",
    "profile",
    "group_id",
    "default_name",
    "qps",
    "quota",
    "concurrency",
    "max_retries",
    "timeout",
    "progress",
    "short_errors",
)


class Configured(Protocol):
    """What the helpers need of the magic: its settings, its target and credentials."""

    def effective(self, name: str) -> Setting[Any]:
        """A setting's value and where it comes from (flags aside)."""
        ...

    def target(self) -> Target:
        """The target a cell without target flags would use (``CmsError`` if none)."""
        ...

    def credentials(self, target: Target | None) -> AnyCredentials:
        """The credentials a send to ``target`` would use (``CmsError`` if none); for
        ``None``, the cloud credentials that are configured."""
        ...

    @property
    def user_namespace(self) -> Mapping[str, Any]:
        """The notebook's variables."""
        ...


def run_subcommand(magic: Configured, words: Sequence[str]) -> Any:
    """Run ``%cms WORDS``; returns what the cell shows (a DataFrame, a result, or None)."""
    if not words or words[0] == "help":
        out(CMS_HELP)
        return None
    command, rest = words[0], list(words[1:])
    if command not in SUBCOMMANDS:
        raise UsageError(f"%cms: unknown subcommand {command!r}; one of {', '.join(SUBCOMMANDS)}")
    if command == "emulator":
        _emulator(rest)
        return None
    if command == "panel":
        return _open_panel(magic.user_namespace, rest)
    if command in READ_SUBCOMMANDS:
        from cms_magic.ui.magic.readback import run_read

        return run_read(magic, command, rest)
    if rest:
        raise UsageError(f"%cms {command} takes no arguments")
    if command == "regions":
        from cms_magic.regions import regions_frame

        return regions_frame()
    if command == "config":
        out(config_text(magic))
        return None
    if command == "whoami":
        out(whoami_text(magic))
        return None
    if command == "last":
        return _last()
    raise AssertionError(command)  # every subcommand is handled above


def _last() -> Any:
    """``%cms last``: a send still running (its job), else the latest result."""
    from cms_magic import last_result

    running = _running_jobs()
    if running:
        job = running[-1]
        more = f" ({len(running)} sends running; this is the latest)" if len(running) > 1 else ""
        out(
            f"a send is still running{more}: its SendJob is shown below "
            "(.progress, .wait(), .result(), .cancel()); the latest finished result is "
            "cms_magic.last_result()"
        )
        return job
    result = last_result()
    if result is None:
        out("no send has finished in this session yet")
    return result


def _running_jobs() -> list[Any]:
    """The sends running now, oldest first (the core's registry)."""
    from cms_magic.sending import jobs

    running = getattr(jobs, "running_jobs", None)
    return list(running()) if callable(running) else []


def _emulator(rest: list[str]) -> None:
    from cms_magic import emulator

    action = rest[0] if rest else "status"
    if len(rest) > 1 or action not in ("start", "stop", "status"):
        raise UsageError("%cms emulator start|stop|status")
    if action == "start":
        server = emulator.embedded()
        out(
            f"local emulator running at {server.url} (demo AccessKey "
            f"{server.credentials.masked_id}); send to it with --endpoint local or "
            '%config CmsMagic.endpoint = "local"'
        )
    elif action == "stop":
        stopped = emulator.stop_embedded()
        out("local emulator stopped" if stopped else "the local emulator was not running")
    else:
        running = emulator.embedded_running()
        if running is None:
            out("local emulator: not running (it starts on first use of --endpoint local)")
        else:
            out(
                f"local emulator: running at {running.url}, {len(running.events()):,} "
                f"events stored, {len(running.requests()):,} requests"
            )


def config_text(magic: Configured) -> str:
    """``%cms config``: every setting with its value and source, then the target and key."""
    rows: list[tuple[str, str, str]] = []
    for name in SETTING_NAMES:
        setting = magic.effective(name)
        shown = "None" if setting.value is None else repr(setting.value)
        rows.append((name, shown, setting.source))
    try:
        target = magic.target()
    except CmsError as exc:
        rows.append(("target", f"(none: {exc.describe(flag_subject)})", ""))
        rows.append(("credentials", "(no target)", ""))
    else:
        rows.append(("target", target.label, target.source))
        try:
            found = magic.credentials(target)
        except CmsError:
            rows.append(("credentials", "(not found: %cms whoami says where it looked)", ""))
        else:
            report = describe_credentials(found, fetch=False)  # config shows, never fetches
            shown = report.access_key_id or "(fetched at first use)"
            rows.append(("credentials", shown, report.source))
    width = max(len(name) for name, _, _ in rows)
    shown_width = max(len(value) for _, value, _ in rows)
    lines = ["CmsMagic settings (flags of a cell override them for that cell only):"]
    lines += [
        f"  {name:<{width}}  {value:<{shown_width}}  {source}".rstrip()
        for name, value, source in rows
    ]
    return "\n".join(lines)


def whoami_text(magic: Configured) -> str:
    """``%cms whoami``: the target and the credentials it would use (the id masked)."""
    target: Target | None
    try:
        target = magic.target()
    except CmsError as exc:
        target = None
        lines = [f"target: none: {exc.describe(flag_subject)}"]
    else:
        lines = [f"target: {target.label} (from {target.source})", f"  {target.where}"]
    try:
        found = magic.credentials(target)
    except CredentialsError as exc:
        lines.append(f"credentials: not found. {exc.describe(flag_subject)}")
    except CmsError as exc:
        lines.append(f"credentials: {exc.describe(flag_subject)}")
    else:
        # A refreshing source is fetched now: whoami is an explicit request to find out.
        report = describe_credentials(found)
        demo = target is not None and target.is_local
        lines.append(f"credentials: {report.text(demo=demo)}")
    return "\n".join(lines)


def _open_panel(namespace: Mapping[str, Any], rest: list[str]) -> Any:
    """``%cms panel [NAME]`` (or ``--df NAME``): the panel, on that DataFrame if named."""
    if rest[:1] == ["--df"]:
        rest = rest[1:]
    if len(rest) > 1 or (rest and rest[0].startswith("-")):
        raise UsageError("%cms panel [NAME]: NAME is a DataFrame to open the panel on")
    frame = frame_named(namespace, rest[0], subject=f"%cms panel {rest[0]}") if rest else None
    try:
        module = importlib.import_module("cms_magic.ui.panel.panel")
    except ModuleNotFoundError as exc:
        if exc.name not in ("cms_magic.ui.panel.panel", "cms_magic"):
            raise
        module = None
    panel = getattr(module, "panel", None)
    if not callable(panel):
        out(
            "the panel is not available yet in this version of cms_magic; send events "
            "with %%cms_event (options: %%cms_event?)"
        )
        return None
    return panel() if frame is None else panel(frame)
