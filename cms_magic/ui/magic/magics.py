"""The IPython skin: ``%%cms_event``, ``%cms`` and ``%config CmsMagic``.

``%load_ext cms_magic`` registers one :class:`CmsMagic` instance with the shell.
It is a thin skin over the Python API: it parses the magic line once
(``@magic_arguments``, so ``%%cms_event?`` shows every option), turns the cell
into events, calls :func:`cms_magic.send` and renders what came back. It holds
no sending logic of its own.

Settings come from, highest first: the flags of the cell, ``%config
CmsMagic.<trait>`` (or an IPython config file), the environment
(``CMS_MAGIC_ENDPOINT``, ``ALIBABA_CLOUD_REGION_ID``, ``ALIBABA_CLOUD_PROFILE``),
then the trait's default. Flags change nothing global. There is no default
target: without ``--endpoint``/``--region`` and without a configured one, the
magic says how to choose one; it never falls back to the emulator silently.

Every user mistake reaches IPython as exactly ``UsageError`` with one line (IPython
shows no traceback for that class only). Failures of the service are not
exceptions: they are in the result, and the summary line says where to look.
Secrets are never magic arguments: a line that looks like it holds one is
refused, unread, and nothing the magic prints or stores shows a secret.

This module (with :mod:`cms_magic.ui.render`) is the only one that
imports IPython; ``import cms_magic`` does not load it.
"""

from __future__ import annotations

import ast
import importlib
import json
import keyword
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar, cast

from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    line_magic,
    magics_class,
    no_var_expand,
)
from traitlets import (
    All,
    Bool,
    CaselessStrEnum,
    Float,
    Int,
    TraitError,
    Unicode,
    Union,
    observe,
    validate,
)

from cms_magic.credentials import ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_PROFILE
from cms_magic.errors import ConfigError, CredentialsError, EventsNotAcceptedError

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from cms_magic.credentials import Credentials
    from cms_magic.results import SendResult
    from cms_magic.sending.client import Progress, SendJob

__all__ = [
    "ENV_ENDPOINT",
    "ENV_REGION",
    "CmsMagic",
    "EventsNotAcceptedError",
    "load_ipython_extension",
    "unload_ipython_extension",
]

#: The environment variable that gives the endpoint (an URL, or ``local``).
ENV_ENDPOINT = "CMS_MAGIC_ENDPOINT"
#: The environment variable that gives the region id (as Alibaba Cloud SDKs read it).
ENV_REGION = "ALIBABA_CLOUD_REGION_ID"

_GROUP_ID_MAX = 2**63 - 1
_PROGRESS_MODES = ("auto", "widget", "text", "off")

_HOW_CREDENTIALS = (
    f"provide credentials through the environment ({ENV_ACCESS_KEY_ID} and "
    f"{ENV_ACCESS_KEY_SECRET}) or a profile of ~/.aliyun/config.json (`aliyun configure`) "
    "chosen with --profile NAME or %config CmsMagic.profile; `%cms whoami` shows what is "
    "found, and --endpoint local uses the local emulator's demo credentials"
)
_HOW_TARGET = (
    "no endpoint configured: add --endpoint local (the local emulator, nothing leaves this "
    "machine), --region ID (e.g. --region cn-hangzhou; `%cms regions` lists them) or "
    "--endpoint URL to the magic line, or set a default with "
    '%config CmsMagic.region = "cn-hangzhou" (or CmsMagic.endpoint = "local")'
)
_CMS_HELP = """\
%cms SUBCOMMAND: cms_magic's helpers.

  %cms regions                   the region catalog (a DataFrame)
  %cms config                    effective settings, each with its source
  %cms whoami                    the target and the credentials it would use (id masked)
  %cms emulator start|stop|status  the local emulator (--endpoint local)
  %cms last                      the result of the latest send (also after Ctrl-C)
  %cms panel                     the point-and-click panel
  %cms help                      this text

Send events with %%cms_event (options: %%cms_event?).
Settings: %config CmsMagic (list), %config CmsMagic.region = "cn-hangzhou"."""
_SUBCOMMANDS = ("regions", "config", "whoami", "emulator", "last", "panel", "help")


# --------------------------------------------------------------------------- small helpers

_F = TypeVar("_F", bound=Callable[..., Any])

# IPython's magic_arguments module has no annotations: typed doors to it.
_untyped_magic_arguments: Callable[..., Any] = _magic_arguments.magic_arguments
_untyped_argument: Callable[..., Any] = _magic_arguments.argument
_untyped_argument_group: Callable[..., Any] = _magic_arguments.argument_group


def magic_arguments() -> Callable[[_F], _F]:
    """``IPython.core.magic_arguments.magic_arguments``: builds the parser and the help."""
    return cast("Callable[[_F], _F]", _untyped_magic_arguments())


def argument(*args: Any, **kwargs: Any) -> Callable[[_F], _F]:
    """``IPython.core.magic_arguments.argument``: one ``add_argument`` call."""
    return cast("Callable[[_F], _F]", _untyped_argument(*args, **kwargs))


def argument_group(*args: Any, **kwargs: Any) -> Callable[[_F], _F]:
    """``IPython.core.magic_arguments.argument_group``: later arguments go in this group."""
    return cast("Callable[[_F], _F]", _untyped_argument_group(*args, **kwargs))


def _cell_and_line_magic(func: _F) -> _F:
    """``@line_cell_magic``, typed: IPython's marker returns a union."""
    line_cell_magic(func)
    return func


def _line_magic(func: _F) -> _F:
    """``@line_magic``, typed."""
    line_magic(func)
    return func


def split_line(line: str) -> list[str]:
    """The words of a magic line, shell-style (quotes removed); ``UsageError`` if unbalanced."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"cannot split the magic line: {exc}") from None


def _one_line(text: str) -> str:
    """A message on one line: line breaks and runs of spaces become single spaces."""
    return " ".join(str(text).split())


_API_OPTIONS = (
    "content_template",
    "content_col",
    "group_id_col",
    "group_id",
    "name_col",
    "time_col",
    "tz",
    "name",
)
_API_ASSIGN = re.compile(r"(?<![\w'\"-])(" + "|".join(_API_OPTIONS) + r")=")
_API_WORD = re.compile(
    r"(?<![\w'\"-])(" + "|".join(_API_OPTIONS) + r")(?= (?:must|is|refers|fields|or)\b|,)"
)


def _as_flags(message: str) -> str:
    """Say a core mapping message in the magic's words: ``name_col='x'`` -> ``--name-col 'x'``."""

    def flag(match: re.Match[str]) -> str:
        return "--" + match.group(1).replace("_", "-")

    text = _API_ASSIGN.sub(lambda m: flag(m) + " ", message)
    return _API_WORD.sub(flag, text)


def _a(noun: str) -> str:
    """``an int``, ``a str``."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _out(text: str) -> None:
    """One line of the magic's output, on the cell's stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- secrets on the line

_SECRET_WORDS = (
    "secret",
    "password",
    "passwd",
    "token",
    "credential",
    "accesskey",
    "signature",
    "privatekey",
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?:^|[\s,;{])[-\"']*[\w.-]*(?:secret|password|passwd|access_?key|access-key|"
    r"security_?token|sts_?token)[\w.-]*[\"']?\s*[=:]",
    re.IGNORECASE,
)
_ACCESS_KEY_ID = re.compile(r"(?<![A-Za-z0-9])(?:LTAI[A-Za-z0-9]{8,}|STS\.[A-Za-z0-9]{10,})")
_SECRET_LIKE = re.compile(r"^[A-Za-z0-9]{30}$")


def _looks_secret(token: str) -> str | None:
    """Why a token of a magic line looks like a credential, or None. Never the token."""
    if token.startswith("-"):
        option = token.lstrip("-").partition("=")[0].lower().replace("_", "-")
        squashed = option.replace("-", "")
        if (
            any(word in squashed for word in _SECRET_WORDS)
            or "key" in option.split("-")
            or squashed in ("ak", "sk", "akid", "aksecret", "keyid")
        ):
            return "an option for a credential"
    if _SECRET_ASSIGNMENT.search(token):
        return "a credential assignment"
    if _ACCESS_KEY_ID.search(token):
        return "an AccessKey id"
    for part in (token, token.partition("=")[2]):
        if (
            _SECRET_LIKE.match(part)
            and any(c.isupper() for c in part)
            and any(c.islower() for c in part)
            and any(c.isdigit() for c in part)
        ):
            return "an AccessKey secret"
    return None


def refuse_secrets(line: str, magic: str) -> None:
    """Raise ``UsageError`` if anything on the magic line looks like a credential."""
    try:
        tokens = shlex.split(line, posix=True)
    except ValueError:
        tokens = line.split()
    for position, token in enumerate(tokens, start=1):
        why = _looks_secret(token)
        if why is not None:
            raise UsageError(
                f"{magic} refuses credentials on the magic line (argument {position} looks "
                f"like {why}; it was not used, and a line is saved in the notebook and its "
                f"history): {_HOW_CREDENTIALS}"
            )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class _Target:
    """Where a send goes, as the core takes it, and how to name it in the output."""

    endpoint: str  # a region id or an URL for send(); "local" for the emulator
    internal: bool
    source: str
    local: bool = False

    def describe(self) -> str:
        if self.local:
            return "the local emulator (--endpoint local)"
        if self.endpoint.startswith(("http://", "https://")):
            return self.endpoint
        return f"region {self.endpoint}{' (internal endpoint)' if self.internal else ''}"


class _Tee:
    """A text stream that writes to ``target`` and keeps a copy in ``sink``."""

    def __init__(self, target: TextIO, sink: list[str]) -> None:
        self._target = target
        self._sink = sink

    def write(self, text: str) -> int:
        self._sink.append(text)
        return self._target.write(text)

    def writelines(self, lines: Sequence[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextmanager
def _tee_output(sink: list[str]) -> Iterator[None]:
    """Show stdout and stderr as usual and keep a copy of both, interleaved, in ``sink``."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = cast(TextIO, _Tee(stdout, sink))
    sys.stderr = cast(TextIO, _Tee(stderr, sink))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = stdout, stderr


# --------------------------------------------------------------------------- the magics


@magics_class
class CmsMagic(Magics):
    """Report CloudMonitor custom events from cells: ``%%cms_event``, ``%cms``.

    Configure with ``%config CmsMagic.<trait> = value``; ``%config CmsMagic``
    lists the traits, ``%cms config`` the effective settings and their sources.
    """

    region = Unicode(
        None,
        allow_none=True,
        help=f"Default region id, e.g. 'cn-hangzhou' (else ${ENV_REGION}). `%cms regions` lists them.",
    ).tag(config=True)
    internal = Bool(
        False, help="Use the region's internal endpoint (from inside Alibaba Cloud)."
    ).tag(config=True)
    endpoint = Unicode(
        None,
        allow_none=True,
        help=(
            f"Default endpoint: an URL, or 'local' for the local emulator (else ${ENV_ENDPOINT}). "
            "Takes precedence over region."
        ),
    ).tag(config=True)
    profile = Unicode(
        None,
        allow_none=True,
        help=f"Credentials profile (~/.aliyun/config.json or the credentials file; else ${ENV_PROFILE}).",
    ).tag(config=True)
    group_id = Int(None, allow_none=True, help="Default application group id of the events.").tag(
        config=True
    )
    default_name = Unicode(
        "cms_magic",
        help="Event name for input without one: --raw, --json or dict events without "
        "'name', a string or printed output.",
    ).tag(config=True)
    qps = Float(
        20.0, help="Requests per second at most (the account's quota; 0: no client-side limit)."
    ).tag(config=True)
    concurrency = Int(4, help="Requests in flight at most.").tag(config=True)
    max_retries = Int(
        4, help="Retries of a failed request (connection errors, 5xx, throttling)."
    ).tag(config=True)
    timeout = Float(10.0, help="Seconds to wait for one response.").tag(config=True)
    progress = Union(
        [Bool(), CaselessStrEnum(list(_PROGRESS_MODES))],
        default_value="auto",
        help="Progress display: 'auto' (a widget in Jupyter, else text), 'widget', 'text', "
        "'off' (True means 'auto', False 'off').",
    ).tag(config=True)
    short_errors = Bool(
        True,
        help="Show user mistakes as one line (UsageError); False shows the full traceback.",
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        self._ready = False
        self._set_by: dict[str, str] = {}
        super().__init__(shell=shell, **kwargs)
        section = self.config.get(type(self).__name__, {})
        for name in section:
            if self.has_trait(name):
                self._set_by[name] = "IPython config"
        self._ready = True

    # ------------------------------------------------------------------ validation

    @observe(All)
    def _remember_source(self, change: Mapping[str, Any]) -> None:
        if getattr(self, "_ready", False):
            self._set_by[str(change["name"])] = "%config"

    @validate("region")
    def _check_region(self, proposal: Mapping[str, Any]) -> str | None:
        value = proposal["value"]
        if value is None or not value.strip():
            return None
        from cms_magic.regions import get_region

        try:
            return get_region(value).id
        except ConfigError as exc:
            raise TraitError(f"CmsMagic.region: {exc}") from None

    @validate("endpoint")
    def _check_endpoint(self, proposal: Mapping[str, Any]) -> str | None:
        value = proposal["value"]
        if value is None or not value.strip():
            return None
        try:
            return _endpoint_value(value, "CmsMagic.endpoint")
        except UsageError as exc:
            raise TraitError(str(exc)) from None

    @validate("profile")
    def _check_profile(self, proposal: Mapping[str, Any]) -> str | None:
        value = proposal["value"]
        if value is None:
            return None
        if not value.strip():
            raise TraitError("CmsMagic.profile must be a profile name, or None")
        return str(value.strip())

    @validate("group_id")
    def _check_group_id(self, proposal: Mapping[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and not 0 <= value <= _GROUP_ID_MAX:
            raise TraitError(f"CmsMagic.group_id must be an integer >= 0, or None; got {value}")
        return cast("int | None", value)

    @validate("default_name")
    def _check_default_name(self, proposal: Mapping[str, Any]) -> str:
        value = str(proposal["value"])
        if not value.strip():
            raise TraitError("CmsMagic.default_name must be a non-empty event name")
        return value

    @validate("qps")
    def _check_qps(self, proposal: Mapping[str, Any]) -> float:
        value = float(proposal["value"])
        if not value >= 0:
            raise TraitError(
                f"CmsMagic.qps must be >= 0 (0 turns the client-side limit off); got {value:g}"
            )
        return value

    @validate("concurrency")
    def _check_concurrency(self, proposal: Mapping[str, Any]) -> int:
        value = int(proposal["value"])
        if not 1 <= value <= 64:
            raise TraitError(f"CmsMagic.concurrency must be between 1 and 64; got {value}")
        return value

    @validate("max_retries")
    def _check_max_retries(self, proposal: Mapping[str, Any]) -> int:
        value = int(proposal["value"])
        if not 0 <= value <= 20:
            raise TraitError(f"CmsMagic.max_retries must be between 0 and 20; got {value}")
        return value

    @validate("timeout")
    def _check_timeout(self, proposal: Mapping[str, Any]) -> float:
        value = float(proposal["value"])
        if not value > 0:
            raise TraitError(f"CmsMagic.timeout must be > 0 seconds; got {value:g}")
        return value

    @validate("progress")
    def _check_progress(self, proposal: Mapping[str, Any]) -> str:
        value = proposal["value"]
        if value is True:
            return "auto"
        if value is False:
            return "off"
        return str(value).lower()

    # ------------------------------------------------------------------ effective settings

    def _setting(self, name: str) -> tuple[Any, str]:
        """A setting's effective value and where it comes from (flags aside)."""
        value = getattr(self, name)
        env = {"region": ENV_REGION, "endpoint": ENV_ENDPOINT, "profile": ENV_PROFILE}.get(name)
        if value is None and env is not None:
            from_env = os.environ.get(env, "").strip()
            if from_env:
                return from_env, f"environment ({env})"
        return value, self._set_by.get(name, "default")

    def _target(self, endpoint: str | None, region: str | None, internal: bool) -> _Target:
        """The target: flags first, then %config, then the environment; never a guess."""
        if endpoint is not None and region is not None:
            raise UsageError("give --endpoint or --region, not both")
        if endpoint is not None:
            return _endpoint_target(endpoint, "--endpoint", internal_flag=internal)
        if region is not None:
            return _region_target(region, "--region", internal or self.internal)
        # %config (or an IPython config file) first, the environment after it
        for explicit in (True, False):
            configured, source = self._setting("endpoint")
            if configured is not None and (self.endpoint is not None) == explicit:
                return _endpoint_target(configured, source, internal_flag=internal)
            configured, source = self._setting("region")
            if configured is not None and (self.region is not None) == explicit:
                return _region_target(configured, source, internal or self.internal)
        raise UsageError(_HOW_TARGET)

    def _credentials(self, target: _Target, profile: str | None) -> Credentials:
        """The demo pair for the emulator; else what ``resolve_credentials`` finds."""
        if target.local:
            if profile is not None:
                raise UsageError(
                    "--profile does not apply to --endpoint local: the local emulator uses its "
                    "demo credentials"
                )
            from cms_magic.emulator import demo_credentials

            return demo_credentials()
        from cms_magic.credentials import resolve_credentials

        chosen = profile if profile is not None else self.profile
        try:
            return resolve_credentials(profile=chosen)
        except CredentialsError as exc:
            if not self.short_errors:
                raise
            raise UsageError(_credentials_problem(exc)) from None

    # ------------------------------------------------------------------ %%cms_event

    @no_var_expand
    @magic_arguments()
    @argument(
        "dest_var",
        nargs="?",
        help="Variable that receives the result (a SendResult; a SendJob with --background). "
        "Without it the result is the cell's displayed value.",
    )
    @argument_group("Input", "One of these; without them the cell runs as Python.")
    @argument(
        "--df",
        metavar="NAME",
        help="Send the rows of the DataFrame NAME; the cell body is not run (as a line "
        "magic: %%cms_event --df NAME).",
    )
    @argument(
        "--raw",
        action="store_true",
        help="The cell text itself, unexecuted, is the content of one event.",
    )
    @argument(
        "--json",
        action="store_true",
        help="The cell text is a JSON array of events (name, content, groupId, time).",
    )
    @argument_group(
        "Mapping",
        "As in cms_magic.events_from_frame; for other input only --name and --group-id "
        "apply (to events without one).",
    )
    @argument("--name", metavar="TEXT", help="Event name for every row.")
    @argument("--name-col", metavar="COL", help="Column holding the event name.")
    @argument("--content-col", metavar="COL", help="Column holding the content.")
    @argument(
        "--content-template",
        metavar="TEMPLATE",
        help="Content as a str.format template over the row, e.g. '{host}: {message}' "
        "(default: a 'content' column, else the whole row as JSON).",
    )
    @argument("--group-id", metavar="N", type=int, help="Application group id for every row.")
    @argument("--group-id-col", metavar="COL", help="Column holding the group id.")
    @argument("--time-col", metavar="COL", help="Column holding the event time.")
    @argument(
        "--tz",
        metavar="ZONE",
        help="Time zone of naive times, e.g. Asia/Shanghai (default: local).",
    )
    @argument_group("Target", "Default: %config CmsMagic.endpoint / CmsMagic.region.")
    @argument("--region", metavar="ID", help="Region id, e.g. cn-hangzhou (%%cms regions).")
    @argument("--internal", action="store_true", help="Use the region's internal endpoint.")
    @argument(
        "--endpoint",
        metavar="URL",
        help="An endpoint URL, or 'local' for the local emulator (started on first use, with "
        "its demo credentials).",
    )
    @argument(
        "--profile",
        metavar="NAME",
        help="Credentials profile (~/.aliyun/config.json or the credentials file). Secrets are "
        "never magic arguments.",
    )
    @argument_group("Behaviour")
    @argument(
        "--dry-run",
        action="store_true",
        help="Everything but the POST: statuses 'dry_run', and the first request's headers "
        "(Authorization masked) and body.",
    )
    @argument(
        "--background",
        action="store_true",
        help="Return a SendJob at once; progress keeps updating in the cell.",
    )
    @argument("--quiet", action="store_true", help="No progress and no summary line.")
    @argument(
        "--raise",
        action="store_true",
        dest="raise_",
        help="Raise EventsNotAcceptedError if any event is not accepted (papermill, CI).",
    )
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
        content of one event. After every send: one summary line.
        """
        try:
            return self._cms_event(line, cell)
        except UsageError:
            raise
        except ConfigError as exc:  # also MappingError and UnknownRegionError
            if not self.short_errors:
                raise
            raise UsageError(_one_line(_as_flags(str(exc)))) from None
        except CredentialsError as exc:
            if not self.short_errors:
                raise
            raise UsageError(_credentials_problem(exc)) from None

    def _cms_event(self, line: str, cell: str | None) -> Any:
        refuse_secrets(line, "%%cms_event")
        args = _parse(self.cms_event, line, "%%cms_event")
        dest = args.dest_var
        if dest is not None:
            self._check_dest(dest)
        if args.background and args.raise_:
            raise UsageError("--raise waits for the result, so it cannot go with --background")
        target = self._target(args.endpoint, args.region, args.internal)
        credentials = self._credentials(target, args.profile)
        data, is_frame = self._input(args, cell)
        mapping = self._mapping(args, data if is_frame else None)
        if not is_frame:
            data = _fill_records(
                data,
                name=args.name if args.name is not None else self.default_name,
                group_id=args.group_id if args.group_id is not None else self.group_id,
            )

        endpoint = target.endpoint
        label = target.describe()
        if target.local:
            from cms_magic.emulator import embedded

            endpoint = embedded().url
            label = f"local emulator {endpoint} (demo credentials)"

        from cms_magic.sending.client import RetryPolicy, last_result, send

        renderer = self._renderer(
            len(data), label=label, quiet=args.quiet, background=args.background, dry=args.dry_run
        )
        before = last_result()
        try:
            outcome = send(
                data,
                endpoint=endpoint,
                internal=target.internal,
                credentials=credentials,
                dry_run=args.dry_run,
                background=args.background,
                progress=renderer if renderer is not None else False,
                qps=self.qps,
                concurrency=self.concurrency,
                timeout=self.timeout,
                retry=RetryPolicy(max_attempts=self.max_retries + 1),
                **mapping,
            )
        except KeyboardInterrupt:
            partial = last_result()
            if partial is not None and partial is not before:
                if dest is not None:
                    self._ns[dest] = partial
                where = dest or "%cms last"
                _out(f"{label}: interrupted: {_summary(partial, dest)} (partial result: {where})")
            raise
        if args.background:
            return self._started(outcome, dest, label, len(data), quiet=args.quiet)
        return self._finished(outcome, dest, label, args)

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

    # ------------------------------------------------------------------ input

    def _input(self, args: Any, cell: str | None) -> tuple[Any, bool]:
        """The events to send and whether they are a DataFrame."""
        chosen = [
            flag
            for flag, on in (("--df", args.df), ("--raw", args.raw), ("--json", args.json))
            if on
        ]
        if len(chosen) > 1:
            raise UsageError(f"give one input at most: {' or '.join(chosen)}, not both")
        body = cell if cell is not None else ""
        if args.df is not None:
            if any(ln.strip() and not ln.strip().startswith("#") for ln in body.splitlines()):
                raise UsageError(
                    "with --df NAME the cell body is not run, so it may hold comments only "
                    "(or use the line magic: %cms_event --df NAME); to run the cell as Python "
                    "and send the DataFrame it ends with, remove --df"
                )
            return self._frame(args.df), True
        if cell is None:
            raise UsageError(
                "as a line magic, %cms_event sends a DataFrame: %cms_event --df NAME; "
                "for cell input use %%cms_event"
            )
        if args.raw:
            text = body.strip("\r\n")
            if not text.strip():
                raise UsageError("the cell is empty: nothing to send")
            return [{"content": text}], False
        if args.json:
            return _json_events(body), False
        return self._run_python(body)

    def _frame(self, name: str) -> Any:
        import pandas as pd

        missing = object()
        value = self._ns.get(name, missing)
        if isinstance(value, pd.DataFrame):
            return value
        frames = sorted(
            key
            for key, item in self._ns.items()
            if not key.startswith("_") and isinstance(item, pd.DataFrame)
        )
        what = "no such variable" if value is missing else _a(type(value).__name__)
        raise UsageError(
            f"--df {name}: {what}, not a DataFrame; DataFrames here: "
            f"{', '.join(frames) if frames else '(none)'}"
        )

    def _run_python(self, cell: str) -> tuple[Any, bool]:
        """Run the cell in the user namespace; its outcome becomes the events."""
        import pandas as pd

        shell: Any = self.shell  # partly annotated: used through Any
        if not cell.strip():
            raise UsageError(
                "the cell is empty: give --df NAME, or a cell whose last value is a DataFrame, "
                "a dict, a list of dicts or a string, or that prints something"
            )
        try:
            transformed = shell.transform_cell(cell)
            filename = shell.compile.cache(transformed, shell.execution_count, raw_code=cell)
            tree = shell.compile.ast_parse(transformed, filename=filename)
        except SyntaxError as exc:
            raise UsageError(
                f"the cell is not valid Python ({exc.msg}, line {exc.lineno}); to send its text "
                "as it is, add --raw"
            ) from None
        module = shell.transform_ast(tree)
        assert isinstance(module, ast.Module)
        last: ast.expr | None = None
        semicolon = False
        final = module.body[-1] if module.body else None
        if isinstance(final, ast.Expr):
            module.body.pop()
            last = final.value
            semicolon = shell.displayhook.semicolon_at_end_of_expression(transformed)
        flags = shell.compile.flags & ~ast.PyCF_ONLY_AST
        printed: list[str] = []
        value: Any = None
        with _tee_output(printed):
            try:
                code = compile(module, filename, "exec", flags=flags, dont_inherit=True)
                exec(code, shell.user_global_ns, shell.user_ns)  # noqa: S102 - the user's cell
                if last is not None:
                    expression = ast.Expression(last)
                    code = compile(expression, filename, "eval", flags=flags, dont_inherit=True)
                    value = eval(code, shell.user_global_ns, shell.user_ns)  # noqa: S307
            except Exception as exc:
                kind, error, trace = sys.exc_info()
                shell.showtraceback((kind, error, trace.tb_next if trace else None))
                raise UsageError(
                    f"the cell raised {type(exc).__name__} (above); nothing was sent"
                ) from None
        if semicolon:
            value = None
        if isinstance(value, pd.DataFrame):
            return value, True
        if isinstance(value, Mapping):
            return [value], False
        if isinstance(value, (list, tuple)):
            from cms_magic.events import Event

            if value and not any(isinstance(item, (Mapping, Event)) for item in value):
                kinds = sorted({type(item).__name__ for item in value})
                raise UsageError(
                    f"the cell's last value is a list of {', '.join(kinds)}: a list must hold "
                    "events (dicts with 'name' and 'content')"
                )
            return list(value), False
        if isinstance(value, str):
            if not value.strip():
                raise UsageError("the cell's last value is an empty string: nothing to send")
            return [{"content": value}], False
        if value is not None:
            raise UsageError(
                f"the cell's last value is {_a(type(value).__name__)}: end the cell with a "
                "DataFrame, a dict, a list of dicts or a string, or with nothing (what it "
                "printed is then sent), e.g. add ';' to its last line"
            )
        text = "".join(printed).rstrip("\r\n")
        if not text.strip():
            raise UsageError(
                "the cell printed nothing and has no last value: nothing to send "
                "(end it with a DataFrame, a dict, a list of dicts or a string)"
            )
        return [{"content": text}], False

    def _mapping(self, args: Any, frame: Any) -> dict[str, Any]:
        """The mapping options for ``send``, checked against the frame's columns now, so a
        mistake is reported before a progress bar is shown (``frame`` None: not a frame)."""
        frame_only = {
            "--name-col": args.name_col,
            "--content-col": args.content_col,
            "--content-template": args.content_template,
            "--group-id-col": args.group_id_col,
            "--time-col": args.time_col,
            "--tz": args.tz,
        }
        if frame is None:
            used = [flag for flag, value in frame_only.items() if value is not None]
            if used:
                raise UsageError(
                    f"{', '.join(used)} map DataFrame columns, and this input is not a "
                    "DataFrame (use --df NAME, or end the cell with a DataFrame)"
                )
            return {}
        group_id = args.group_id
        if group_id is None and args.group_id_col is None:
            group_id = self.group_id
        mapping = {
            "name": args.name,
            "name_col": args.name_col,
            "content_col": args.content_col,
            "content_template": args.content_template,
            "group_id": group_id,
            "group_id_col": args.group_id_col,
            "time_col": args.time_col,
            "tz": args.tz,
        }
        from cms_magic.events import EventMapping

        EventMapping(**mapping).resolved(list(frame.columns))  # raises MappingError
        return mapping

    # ------------------------------------------------------------------ output

    def _renderer(
        self, total: int, *, label: str, quiet: bool, background: bool, dry: bool
    ) -> Callable[[Progress], None] | None:
        """The progress renderer this cell gets: a widget, a text line, or none."""
        from cms_magic.ui import render

        mode = str(self.progress)
        if quiet or mode == "off":
            return None
        in_kernel = getattr(self.shell, "kernel", None) is not None
        wants_widget = mode == "widget" or (mode == "auto" and in_kernel)
        if wants_widget and _widgets_available():
            return render.WidgetProgress(total, label=label, dry_run=dry, background=background)
        if in_kernel:
            return render.TextDisplayProgress(
                total, label=label, dry_run=dry, background=background
            )
        if background:
            return None  # a terminal: lines from a thread would land in the prompt
        return render.PrintProgress(sys.stdout, label=label)

    def _finished(self, result: SendResult, dest: str | None, label: str, args: Any) -> Any:
        line = _summary(result, dest)
        if not args.quiet:
            _out(f"{label}: {line}")
            if args.dry_run:
                _out(_preview_text(result.preview))
        if dest is not None:
            self._ns[dest] = result
        if args.raise_:
            counts = result.counts()
            bad = counts["rejected"] + counts["not_sent"] + counts["unknown"]
            if bad or result.error:
                raise EventsNotAcceptedError(
                    f"{bad:,}/{len(result):,} events not accepted: {line}", result=result
                )
        return None if dest is not None else result

    def _started(
        self, job: SendJob, dest: str | None, label: str, total: int, *, quiet: bool
    ) -> Any:
        if not quiet:
            name = dest or "the job shown below"
            _out(
                f"{label}: sending {total:,} events in the background -> {name} "
                "(.status, .progress, .wait(), .result(), .cancel(); %cms last when done)"
            )
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
            %cms last                        the latest result (also after Ctrl-C)
            %cms panel                       the point-and-click panel
            %cms help                        this text
        """
        refuse_secrets(line, "%cms")
        words = split_line(line)
        if not words or words[0] == "help":
            _out(_CMS_HELP)
            return None
        command, rest = words[0], words[1:]
        if command not in _SUBCOMMANDS:
            raise UsageError(
                f"%cms: unknown subcommand {command!r}; one of {', '.join(_SUBCOMMANDS)}"
            )
        if command == "emulator":
            return self._cms_emulator(rest)
        if rest:
            raise UsageError(f"%cms {command} takes no arguments")
        if command == "regions":
            from cms_magic.regions import regions_frame

            return regions_frame()
        if command == "config":
            _out(self._config_text())
            return None
        if command == "whoami":
            _out(self._whoami_text())
            return None
        if command == "last":
            from cms_magic.sending.client import last_result

            result = last_result()
            if result is None:
                _out("no send has finished in this session yet")
            return result
        return _open_panel()

    def _cms_emulator(self, rest: list[str]) -> None:
        from cms_magic import emulator

        action = rest[0] if rest else "status"
        if len(rest) > 1 or action not in ("start", "stop", "status"):
            raise UsageError("%cms emulator start|stop|status")
        if action == "start":
            server = emulator.embedded()
            _out(
                f"local emulator running at {server.url} (demo AccessKey "
                f"{server.credentials.masked_id}); send to it with --endpoint local or "
                '%config CmsMagic.endpoint = "local"'
            )
        elif action == "stop":
            stopped = emulator.stop_embedded()
            _out("local emulator stopped" if stopped else "the local emulator was not running")
        else:
            running = emulator.embedded_running()
            if running is None:
                _out("local emulator: not running (it starts on first use of --endpoint local)")
            else:
                _out(
                    f"local emulator: running at {running.url}, {len(running.events()):,} "
                    f"events stored, {len(running.requests()):,} requests"
                )

    def _config_text(self) -> str:
        names = [
            "endpoint",
            "region",
            "internal",
            "profile",
            "group_id",
            "default_name",
            "qps",
            "concurrency",
            "max_retries",
            "timeout",
            "progress",
            "short_errors",
        ]
        rows: list[tuple[str, str, str]] = []
        for name in names:
            value, source = self._setting(name)
            rows.append((name, "None" if value is None else repr(value), source))
        try:
            target = self._target(None, None, False)
        except UsageError:
            rows.append(
                ("target", "(none: use --endpoint local, --region ID or --endpoint URL)", "")
            )
            rows.append(("credentials", "(no target)", ""))
        else:
            rows.append(("target", target.describe(), target.source))
            rows.append(("credentials", *self._credentials_row(target)))
        width = max(len(name) for name, _, _ in rows)
        shown = max(len(value) for _, value, _ in rows)
        lines = ["CmsMagic settings (flags of a cell override them for that cell only):"]
        lines += [
            f"  {name:<{width}}  {value:<{shown}}  {source}".rstrip()
            for name, value, source in rows
        ]
        return "\n".join(lines)

    def _credentials_row(self, target: _Target) -> tuple[str, str]:
        if target.local:
            from cms_magic.emulator import demo_credentials

            demo = demo_credentials()
            return demo.masked_id, demo.source
        from cms_magic.credentials import resolve_credentials

        try:
            found = resolve_credentials(profile=self.profile)
        except CredentialsError:
            return "(not found: %cms whoami says where it looked)", ""
        return found.masked_id, found.source

    def _whoami_text(self) -> str:
        target: _Target | None
        try:
            target = self._target(None, None, False)
        except UsageError:
            target = None
        if target is None:
            lines = [
                "target: none configured (use --endpoint local, --region ID or --endpoint URL)"
            ]
        else:
            lines = [f"target: {target.describe()} (from {target.source})"]
        if target is not None and target.local:
            from cms_magic.emulator import demo_credentials

            demo = demo_credentials()
            lines.append(f"credentials: {demo.masked_id} from {demo.source}")
            return "\n".join(lines)
        from cms_magic.credentials import resolve_credentials

        try:
            found = resolve_credentials(profile=self.profile)
        except CredentialsError as exc:
            lines.append(f"credentials: not found. {exc}")
        else:
            token = ", with an STS token" if found.security_token else ""
            lines.append(f"credentials: AccessKey {found.masked_id} from {found.source}{token}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- module helpers


def _parse(magic: Callable[..., Any], line: str, name: str) -> Any:
    words = split_line(line)
    parser: Any = getattr(magic, "parser")  # noqa: B009 - set by @magic_arguments
    try:
        return parser.parse_args(words)
    except UsageError as exc:
        raise UsageError(f"{name}: {_one_line(str(exc))} (options: {name}?)") from None


def _endpoint_value(value: str, source: str) -> str:
    """``local`` or a normalised endpoint URL; a region id is pointed to ``--region``."""
    text = value.strip()
    if text.lower() == "local":
        return "local"
    if not text.lower().startswith(("http://", "https://")):
        raise UsageError(
            f"{source} takes an URL like https://host[:port], or 'local' for the local "
            "emulator; for a region id use --region (or CmsMagic.region)"
        )
    from cms_magic.regions import endpoint

    try:
        return endpoint(text)
    except ConfigError as exc:
        raise UsageError(f"{source}: {_one_line(str(exc))}") from None


def _endpoint_target(value: str, source: str, *, internal_flag: bool) -> _Target:
    url = _endpoint_value(value, source)
    if internal_flag:
        raise UsageError(
            "--internal chooses a region's internal endpoint, so it goes with --region, not "
            "with an endpoint URL or the local emulator"
        )
    if url == "local":
        return _Target("local", False, source, local=True)
    return _Target(url, False, source)


def _region_target(value: str, source: str, internal: bool) -> _Target:
    from cms_magic.regions import get_region

    try:
        region = get_region(value)
    except ConfigError as exc:
        raise UsageError(f"{source}: {_one_line(str(exc))}") from None
    return _Target(region.id, internal, source)


def _summary(result: SendResult, dest: str | None) -> str:
    """The result's summary line, pointing at the variable that holds it."""
    return result.summary(dest or "cms_magic.last_result()")


def _credentials_problem(exc: CredentialsError) -> str:
    """One line: what is wrong with the credentials (never their values) and how to fix it."""
    first = str(exc).splitlines()[0].strip()
    first = first.removesuffix("Looked in:").strip().rstrip(".:;")
    return f"{first}: {_HOW_CREDENTIALS}"


def _json_events(body: str) -> list[Any]:
    if not body.strip():
        raise UsageError("--json: the cell is empty; it should hold a JSON array of events")
    try:
        parsed = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--json: the cell is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    if isinstance(parsed, dict):
        return [parsed]
    if not isinstance(parsed, list):
        raise UsageError(
            f"--json: the cell must hold a JSON array of events, got {_a(_JSON_TYPES.get(type(parsed), 'value'))}"
        )
    return parsed


def _fill_records(records: list[Any], *, name: str, group_id: int | None) -> list[Any]:
    """Events as given, with ``name`` (and ``groupId``) filled in where they have none."""
    filled: list[Any] = []
    for record in records:
        if isinstance(record, Mapping):
            event = dict(record)
            if event.get("name") is None:
                event["name"] = name
            if group_id is not None and event.get("groupId", event.get("group_id")) is None:
                event.pop("group_id", None)
                event["groupId"] = group_id
            filled.append(event)
        else:
            filled.append(record)
    return filled


def _preview_text(preview: Mapping[str, Any] | None) -> str:
    """The first request of a dry run: method, URL, headers (Authorization masked), body."""
    if not preview:
        return "(no request would be sent: no event passed validation)"
    lines = [
        f"first request: {preview['method']} {preview['url']} ({preview['body_bytes']:,} bytes)"
    ]
    lines += [f"  {name}: {value}" for name, value in preview["headers"].items()]
    lines.append(f"body: {preview['body_preview']}")
    return "\n".join(lines)


def _widgets_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ipywidgets") is not None


def _open_panel() -> Any:
    try:
        module = importlib.import_module("cms_magic.ui.panel.panel")
    except ModuleNotFoundError as exc:
        if exc.name not in ("cms_magic.ui.panel.panel", "cms_magic"):
            raise
        module = None
    panel = getattr(module, "panel", None)
    if not callable(panel):
        _out(
            "the panel is not available yet in this version of cms_magic; send events "
            "with %%cms_event (options: %%cms_event?)"
        )
        return None
    return panel()


# --------------------------------------------------------------------------- the extension


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """Register ``%%cms_event``, ``%cms`` and ``CmsMagic`` with the shell; twice is harmless."""
    manager = ipython.magics_manager
    existing = manager.registry.get(CmsMagic.__name__)
    if isinstance(existing, CmsMagic) and manager.magics["cell"].get("cms_event") is not None:
        return
    manager.register(CmsMagic(shell=ipython))


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """Remove the magics and the configurable registered by :func:`load_ipython_extension`."""
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
