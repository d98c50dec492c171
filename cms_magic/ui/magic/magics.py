"""The IPython skin: ``%%cms_event``, ``%cms`` and ``%config CmsMagic``.

``%load_ext cms_magic`` registers one :class:`CmsMagic` instance with the shell.
It is a thin skin over the Python API: it parses the magic line once
(``@magic_arguments``, built from :data:`cms_magic.ui.options.OPTIONS`, so
``%%cms_event?`` shows every option), reads the input (:mod:`.inputs`, running
the cell with :mod:`.cell`), asks :func:`cms_magic.targets.resolve_target`
where to send, calls :func:`cms_magic.send` and binds the result. It holds no
sending logic of its own.

Settings come from, highest first: the flags of the cell, ``%config
CmsMagic.<trait>`` (or an IPython config file), the environment
(``CMS_MAGIC_ENDPOINT``, ``ALIBABA_CLOUD_REGION_ID``, ``ALIBABA_CLOUD_PROFILE``),
then the trait's default. Flags change nothing global. With no target anywhere,
the target follows the one rule of :mod:`cms_magic.targets`: the local emulator,
unless cloud credentials are configured; every summary line names the target.

Every user mistake reaches IPython as exactly ``UsageError`` with one line (IPython
shows no traceback for that class only): the core's errors carry fields, and the
magic words them with :func:`cms_magic.ui.options.flag_subject`. Failures of the
service are not exceptions: they are in the result, and the summary line says
where to look. Secrets are never magic arguments (:mod:`.guard`).

This package (with :mod:`cms_magic.ui.render`) is the only one that imports
IPython; ``import cms_magic`` does not load it.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class, no_var_expand

from cms_magic.errors import (
    CmsError,
    ConfigError,
    CredentialsError,
    EventsNotAcceptedError,
    InputError,
)
from cms_magic.settings import ENV_ENDPOINT, ENV_REGION
from cms_magic.ui.magic import report
from cms_magic.ui.magic.arguments import (
    FRAME_ONLY,
    cms_event_arguments,
    one_line,
    parse_line,
    split_line,
)
from cms_magic.ui.magic.config import CmsMagicConfig
from cms_magic.ui.magic.guard import HOW_CREDENTIALS, refuse_secret_words, refuse_secrets
from cms_magic.ui.magic.inputs import CellInput, fill_records, read_input
from cms_magic.ui.magic.subcommands import run_subcommand
from cms_magic.ui.options import MAPPING_OPTIONS, flag_subject

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from cms_magic import SendJob
    from cms_magic.results import SendResult

__all__ = [
    "ENV_ENDPOINT",
    "ENV_REGION",
    "CmsMagic",
    "EventsNotAcceptedError",
    "load_ipython_extension",
    "refuse_secrets",
    "split_line",
    "unload_ipython_extension",
]

_F = TypeVar("_F", bound=Callable[..., Any])


def _cell_and_line_magic(func: _F) -> _F:
    """``@line_cell_magic``, typed: IPython's marker returns a union."""
    line_cell_magic(func)
    return func


def _line_magic(func: _F) -> _F:
    """``@line_magic``, typed."""
    line_magic(func)
    return func


@magics_class
class CmsMagic(CmsMagicConfig):
    """Report CloudMonitor custom events from cells: ``%%cms_event``, ``%cms``.

    Configure with ``%config CmsMagic.<trait> = value``; ``%config CmsMagic``
    lists the traits, ``%cms config`` the effective settings and their sources.
    """

    # ------------------------------------------------------------------ %%cms_event

    @no_var_expand
    @cms_event_arguments()
    @_cell_and_line_magic
    def cms_event(self, line: str, cell: str | None = None) -> Any:
        """Send the cell's events to CloudMonitor (or the local emulator).

        Examples::

            %cms_event --df incidents --name incident --endpoint local
            %cms_event result --df df --name-col kind --time-col at --region cn-hangzhou

            %%cms_event --raw --name deploy
            release 1.4.2 rolled out to 40 hosts

            %%cms_event job --background --name-col kind
            pd.read_csv("incidents.csv").query("severity == 'high'")

        Without --df, --raw or --json the cell runs as Python: a DataFrame as its
        last value sends its rows, a dict or list of dicts those events, a string
        one event with that content, and otherwise what the cell printed is the
        content of one event. ``%%cms_event --df NAME`` with nothing below it is the
        line magic.

        ``$name`` (or ``${name}``) on the line is the value of that variable (a
        string or a number), ``$$`` a literal ``$``; nothing expands in single
        quotes, and braces are never touched (``--content-template '{host}'``).

        After a send the summary is said once: the progress bar turns into the
        summary line (without a bar, the line is printed). The cell shows no
        value: the result is in DEST_VAR if given, else in ``_`` (and ``Out``),
        and always ``cms_magic.last_result()`` / ``%cms last``; to keep it, name
        the variable: ``%cms_event r --df df`` (``r = %cms_event ...`` gets None).
        With --background the cell's value is the SendJob (without DEST_VAR).
        Ctrl-C stops the send and says in one line what was accepted, what was not
        sent and how to resume (``.retry()``).
        """
        try:
            return self._cms_event(line, cell)
        except (ConfigError, CredentialsError, InputError) as exc:
            if not self.short_errors:
                raise
            raise UsageError(_usage_message(exc)) from None

    def _words(self, line: str, magic: str) -> list[str]:
        """The line's words with ``$name`` expanded; credentials refused before and after."""
        refuse_secrets(line, magic)
        words = split_line(line, self._ns)
        if "$" in line:
            refuse_secret_words(words, magic, expanded=True)
        return words

    def _cms_event(self, line: str, cell: str | None) -> Any:
        args = parse_line(self.cms_event, self._words(line, "%%cms_event"), "%%cms_event")
        dest = args.dest_var
        if dest is not None:
            self._check_dest(dest)
        if args.background and args.raise_:
            raise UsageError("--raise waits for the result, so it cannot go with --background")
        target = self.target(
            args.endpoint, args.region, internal=args.internal, profile=args.profile
        )
        credentials = self.credentials(target, args.profile)
        given = read_input(self.shell, cell, df=args.df, raw=args.raw, json_cell=args.json)
        mapping = self._mapping(args, given)
        data = given.data
        if not given.is_frame:
            data = fill_records(
                data,
                name=args.name if args.name is not None else self.default_name,
                group_id=args.group_id if args.group_id is not None else self.group_id,
            )
        options = self._send_options(args)
        label = target.label
        mode = "off" if args.quiet else str(self.progress)
        renderer = report.renderer(
            mode,
            in_kernel=getattr(self.shell, "kernel", None) is not None,
            total=len(given),
            label=label,
            background=args.background,
            dry_run=args.dry_run,
        )
        from cms_magic import last_result, send

        before = last_result()
        try:
            outcome = send(
                data,
                endpoint=target,
                credentials=credentials,
                dry_run=args.dry_run,
                background=args.background,
                progress=renderer if renderer is not None else False,
                journal=args.journal,
                confirm=bool(args.confirm),
                **options,
                **mapping,
            )
        except KeyboardInterrupt:
            partial = last_result()
            if partial is None or partial is before:
                raise
            if dest is not None:
                self._ns[dest] = partial
            raise report.interrupted(renderer, label, partial, dest) from None
        if args.background:
            if renderer is not None:
                report.close_when_done(outcome, renderer, dest)
            return self._started(outcome, dest, label, len(given), quiet=args.quiet)
        return self._finished(outcome, dest, label, args, renderer)

    def _check_dest(self, dest: str) -> None:
        if not dest.isidentifier() or keyword.iskeyword(dest):
            raise UsageError(
                "the first argument is the variable that receives the result and must be a "
                "Python name; options start with -- (see %%cms_event?)"
            )
        import pandas as pd

        if isinstance(self._ns.get(dest), pd.DataFrame):
            raise UsageError(
                f"{dest} is a DataFrame, and the first argument is the variable that receives "
                f"the result: to send its rows, write --df {dest}"
            )

    @property
    def _ns(self) -> dict[str, Any]:
        assert self.shell is not None
        return cast("dict[str, Any]", self.shell.user_ns)

    def _mapping(self, args: Any, given: CellInput) -> dict[str, Any]:
        """The mapping options for ``send``, checked against a frame's columns now, so a
        mistake is reported before a progress bar is shown."""
        if not given.is_frame:
            used = [o.flag for o in FRAME_ONLY if getattr(args, o.name) is not None]
            if used:
                raise UsageError(
                    f"{', '.join(used)} map DataFrame columns, and this input is not a "
                    "DataFrame (use --df NAME, or end the cell with a DataFrame)"
                )
            return {}
        mapping = {o.name: getattr(args, o.name) for o in MAPPING_OPTIONS}
        if mapping["group_id"] is None and mapping["group_id_col"] is None:
            mapping["group_id"] = self.group_id
        from cms_magic.events import EventMapping

        EventMapping(**mapping).resolved(list(given.data.columns))  # raises MappingError
        return {name: value for name, value in mapping.items() if value is not None}

    def _finished(
        self,
        result: SendResult,
        dest: str | None,
        label: str,
        args: Any,
        renderer: Callable[..., None] | None,
    ) -> None:
        """Say the summary once (the bar turns into it, else one line), bind the result;
        the cell shows no value (without ``dest`` the result is ``_``)."""
        line = report.summary(result, dest)
        if not args.quiet:
            report.say_summary(renderer, label, result, dest)
            if args.dry_run:
                report.out(report.preview_text(result.preview))
        if dest is not None:
            self._ns[dest] = result
        else:
            self._keep_as_underscore(result)
        if args.raise_:
            bad = int(result.failed_mask().sum())
            if bad or result.error:
                raise EventsNotAcceptedError(
                    f"{bad:,}/{len(result):,} events not accepted: {line}", result=result
                )

    def _keep_as_underscore(self, result: SendResult) -> None:
        """``_`` (and ``Out[n]``) hold the result, as if it were shown; nothing is shown."""
        hook = getattr(self.shell, "displayhook", None)
        update = getattr(hook, "update_user_ns", None)
        if callable(update):
            update(result)

    @property
    def user_namespace(self) -> dict[str, Any]:
        """The notebook's variables (``%cms panel NAME`` looks there)."""
        return self._ns

    def _started(
        self, job: SendJob, dest: str | None, label: str, total: int, *, quiet: bool
    ) -> Any:
        if not quiet:
            report.out(report.background_line(label, total, dest))
        if dest is not None:
            self._ns[dest] = job
            return None
        return job

    # ------------------------------------------------------------------ %cms

    @no_var_expand
    @_line_magic
    def cms(self, line: str) -> Any:
        """cms_magic's helpers.

        ::

            %cms regions                     the region catalog (a DataFrame)
            %cms config                      effective settings, each with its source
            %cms whoami                      the target and its credentials (id masked)
            %cms emulator start|stop|status  the local emulator (--endpoint local)
            %cms last                        the latest result (also after Ctrl-C), or
                                             the send still running (its SendJob)
            %cms panel [NAME]                the point-and-click panel (on DataFrame NAME)
            %cms events [DEST] --name X --since 1h [--until T] [--group-id N]
                        [--search WORDS] [--limit N]
                                             the events CloudMonitor holds (a DataFrame)
            %cms count [DEST] [filters] [--by-name]
                                             how many events match
            %cms histogram [DEST] [filters] [--level LEVEL]
                                             events per time bucket, as a chart
            %cms help                        this text

        The read-back commands take --endpoint, --region and --profile, and otherwise
        read where a send would go; ``%cms events --help`` lists every filter.

        ``$name`` expands as in ``%%cms_event``.
        """
        return run_subcommand(self, self._words(line, "%cms"))


def _usage_message(exc: CmsError) -> str:
    """One line, in the magic's words (flags), for a user's mistake."""
    if isinstance(exc, CredentialsError):
        # What is wrong with the credentials (never their values), then how to give them.
        first = exc.describe(flag_subject).splitlines()[0].strip()
        first = first.removesuffix("Looked in:").strip().rstrip(".:;")
        return f"{first}: {HOW_CREDENTIALS}"
    return one_line(exc.describe(flag_subject))


# --------------------------------------------------------------------------- the extension


def empty_cell_as_line(lines: list[str]) -> list[str]:
    """An input transformer: ``%%cms_event ARGS`` with nothing below it runs as the line
    magic ``%cms_event ARGS`` (IPython refuses a cell magic with an empty body before the
    magic is called)."""
    if not lines or not lines[0].startswith("%%cms_event"):
        return lines
    after = lines[0][len("%%cms_event") :]
    if after[:1] not in ("", " ", "\t", "\n", "\r") or "".join(lines[1:]).strip():
        return lines
    return [lines[0][1:].rstrip("\r\n") + "\n"]


# IPython skips a transformer so marked when it asks whether typed input is complete: a
# terminal still waits for the body of a ``%%cms_event`` cell instead of running its first
# line as the line magic.
setattr(empty_cell_as_line, "has_side_effects", True)  # noqa: B010 - IPython's marker


def _transformers(ipython: InteractiveShell) -> list[Callable[[list[str]], list[str]]]:
    return cast("list[Callable[[list[str]], list[str]]]", ipython.input_transformers_cleanup)


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%%cms_event``, ``%cms`` and ``CmsMagic`` with the shell; twice is harmless."""
    if empty_cell_as_line not in _transformers(ipython):
        _transformers(ipython).append(empty_cell_as_line)
    manager = ipython.magics_manager
    existing = manager.registry.get(CmsMagic.__name__)
    if isinstance(existing, CmsMagic) and manager.magics["cell"].get("cms_event") is not None:
        return
    manager.register(CmsMagic(shell=ipython))


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove the magics and the configurable registered by :func:`load_ipython_extension`."""
    while empty_cell_as_line in _transformers(ipython):
        _transformers(ipython).remove(empty_cell_as_line)
    manager = ipython.magics_manager
    instance = manager.registry.pop(CmsMagic.__name__, None)
    for kind, names in (("line", ("cms", "cms_event")), ("cell", ("cms_event",))):
        table = manager.magics[kind]
        for name in names:
            function = table.get(name)
            if function is not None and isinstance(getattr(function, "__self__", None), CmsMagic):
                del table[name]
    if instance is not None and instance in ipython.configurables:
        ipython.configurables.remove(instance)
