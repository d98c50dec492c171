"""``%config CmsMagic``: the magic's settings, their checks and where each came from.

:class:`CmsMagicConfig` holds the traits (``%config CmsMagic.qps = 5``, or an
IPython config file), checks each assignment with the core's own checks
(:mod:`cms_magic.settings`, :func:`cms_magic.targets.parse_target`), remembers
the source of each value, and answers the questions a cell asks of them: the
target (:func:`cms_magic.targets.resolve_target` with the configured values
and their sources), the credentials, and the send options a cell's flags
override for that cell only. The defaults are the options table's
(:data:`cms_magic.ui.options.OPTIONS`), which are :mod:`cms_magic.settings`'.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from IPython.core.magic import Magics
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

from cms_magic.credentials import ENV_PROFILE
from cms_magic.errors import NO_VALUE, CmsError, ConfigError, show_value
from cms_magic.protocol import GROUP_ID_MAX
from cms_magic.settings import (
    ENV_ENDPOINT,
    ENV_REGION,
    Setting,
    check_concurrency,
    check_count,
    check_qps,
    check_seconds,
)
from cms_magic.ui.magic.arguments import one_line
from cms_magic.ui.magic.report import PROGRESS_MODES
from cms_magic.ui.options import option

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from cms_magic.identity import AnyCredentials
    from cms_magic.targets import Target

__all__ = ["CmsMagicConfig"]


def _check_quota(value: object) -> str:
    """A ``quota`` setting, checked now (its words, as ``quota_factory`` reads them)."""
    from cms_magic.sending.quota import quota_factory

    quota_factory(value)
    return str(value).strip()


#: The send settings a cell's flag overrides, and the check each value passes.
_CHECKS: dict[str, Callable[[Any], Any]] = {
    "qps": lambda v: check_qps(v, "qps"),
    "concurrency": lambda v: check_concurrency(v, "concurrency"),
    "timeout": lambda v: check_seconds(v, "timeout"),
    "max_retries": lambda v: check_count(v, "max_retries", minimum=0),
    "quota": _check_quota,
}


_ENVIRONMENT = {"region": ENV_REGION, "endpoint": ENV_ENDPOINT, "profile": ENV_PROFILE}


def _trait_subject(name: str, value: object) -> str:
    """An error's subject as ``%config`` says it: ``CmsMagic.qps = -1``."""
    return f"CmsMagic.{name}" if value is NO_VALUE else f"CmsMagic.{name} = {show_value(value)}"


def _trait_error(exc: CmsError) -> TraitError:
    return TraitError(one_line(exc.describe(_trait_subject)))


class CmsMagicConfig(Magics):
    """The traits of :class:`~cms_magic.ui.magic.magics.CmsMagic` and what a cell reads of them.

    The configurable is ``CmsMagic`` (its subclass): ``%config CmsMagic.<trait> = value``.
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
            "Default endpoint: a URL, a region id, 'public', or 'local' for the local emulator "
            f"(else ${ENV_ENDPOINT}). Takes precedence over region."
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
    qps = Float(option("qps").default, help=option("qps").help).tag(config=True)
    concurrency = Int(option("concurrency").default, help=option("concurrency").help).tag(
        config=True
    )
    max_retries = Int(option("max_retries").default, help=option("max_retries").help).tag(
        config=True
    )
    timeout = Float(option("timeout").default, help=option("timeout").help).tag(config=True)
    quota = Unicode("host", help=option("quota").help).tag(config=True)
    progress = Union(
        [Bool(), CaselessStrEnum(list(PROGRESS_MODES))],
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
        except CmsError as exc:
            raise _trait_error(exc) from None

    @validate("endpoint")
    def _check_endpoint(self, proposal: Mapping[str, Any]) -> str | None:
        value = proposal["value"]
        if value is None or not value.strip():
            return None
        from cms_magic.targets import LOCAL, PUBLIC, parse_target

        try:
            target = parse_target(value)
        except CmsError as exc:
            raise _trait_error(exc) from None
        if target.kind == "local":
            return LOCAL
        if target.kind == "public":
            return PUBLIC
        return target.region if target.kind == "region" else target.url

    @validate("profile")
    def _check_profile(self, proposal: Mapping[str, Any]) -> str | None:
        value = proposal["value"]
        if value is None:
            return None
        if not value.strip():
            raise _trait_error(
                ConfigError("must be a profile name, or None", option="profile", value=value)
            )
        return str(value.strip())

    @validate("group_id")
    def _check_group_id(self, proposal: Mapping[str, Any]) -> int | None:
        value = proposal["value"]
        if value is not None and not 0 <= value <= GROUP_ID_MAX:
            raise _trait_error(
                ConfigError(
                    f"must be an integer from 0 to {GROUP_ID_MAX}, or None",
                    option="group_id",
                    value=value,
                )
            )
        return cast("int | None", value)

    @validate("default_name")
    def _check_default_name(self, proposal: Mapping[str, Any]) -> str:
        value = str(proposal["value"])
        if not value.strip():
            raise _trait_error(
                ConfigError("must be a non-empty event name", option="default_name", value=value)
            )
        return value

    @validate("qps", "concurrency", "max_retries", "timeout", "quota")
    def _check_send_setting(self, proposal: Mapping[str, Any]) -> Any:
        try:
            return _CHECKS[proposal["trait"].name](proposal["value"])
        except CmsError as exc:
            raise _trait_error(exc) from None

    @validate("progress")
    def _check_progress(self, proposal: Mapping[str, Any]) -> str:
        value = proposal["value"]
        if value is True:
            return "auto"
        if value is False:
            return "off"
        return str(value).lower()

    # ------------------------------------------------------------------ effective settings

    def effective(self, name: str) -> Setting[Any]:
        """A setting's effective value and where it comes from (flags aside)."""
        value = getattr(self, name)
        env = _ENVIRONMENT.get(name)
        if value is None and env is not None:
            from_env = os.environ.get(env, "").strip()
            if from_env:
                return Setting(from_env, f"environment ({env})")
        return Setting(value, self._set_by.get(name, "default"))

    def _configured(self, name: str) -> tuple[str, str] | None:
        value = getattr(self, name)
        if value is None:
            return None
        return value, f"{self._set_by.get(name, '%config')} CmsMagic.{name}"

    def target(
        self,
        endpoint: str | None = None,
        region: str | None = None,
        *,
        internal: bool = False,
        profile: str | None = None,
    ) -> Target:
        """The target: flags first, then ``%config``, then the environment, then the one rule."""
        from cms_magic.targets import parse_target, resolve_target

        target = resolve_target(
            endpoint,
            region=region,
            internal=internal,
            configured_endpoint=self._configured("endpoint"),
            configured_region=self._configured("region"),
            credentials_given=(profile if profile is not None else self.profile) is not None,
        )
        if self.internal and target.kind == "region" and not target.internal:
            # %config CmsMagic.internal is a default for regions only.
            assert target.region is not None
            target = parse_target(target.region, internal=True, source=target.source)
        return target

    def credentials(self, target: Target | None, profile: str | None = None) -> AnyCredentials:
        """The credentials for ``target``: the demo key for the emulator, else the profile
        (the flag's, else ``%config``'s) or what the environment holds."""
        if target is not None and target.kind == "local":
            return target.credentials(profile=profile)  # --profile here is an error
        chosen = profile if profile is not None else self.profile
        if target is None:
            from cms_magic.credentials import resolve_credentials

            return resolve_credentials(profile=chosen)
        return target.credentials(profile=chosen)

    def _send_options(self, args: Any) -> dict[str, Any]:
        """``send``'s options: a cell's flags (checked), else the ``%config`` traits."""
        chosen = {
            name: check(getattr(args, name))
            if getattr(args, name) is not None
            else getattr(self, name)
            for name, check in _CHECKS.items()
        }
        from cms_magic import RetryPolicy

        retry = RetryPolicy(max_attempts=chosen.pop("max_retries") + 1)
        return {**chosen, "retry": retry, "retry_ambiguous": bool(args.retry_ambiguous)}
