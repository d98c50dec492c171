"""cms_magic: report Alibaba Cloud CloudMonitor custom events from pandas and Jupyter.

``import cms_magic`` is light: it loads neither pandas, IPython nor ipywidgets.
Public names are resolved lazily on first use (PEP 562), so the submodule that
holds a name is imported only when the name is touched.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from cms_magic._version import __version__

# A library logs; the application decides where logs go. Without a handler, logging's
# "last resort" would print cms_magic's warnings on stderr (in a kernel: into the cell),
# repeating what the skins already say in their own words.
logging.getLogger("cms_magic").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from cms_magic import regions
    from cms_magic.batching import Batch, BatchPlan, plan_batches
    from cms_magic.credentials.refreshing import RefreshingCredentials
    from cms_magic.credentials.static import Credentials, resolve_credentials
    from cms_magic.errors import (
        AuthError,
        CmsError,
        ConfigError,
        CredentialsError,
        JournalError,
        JournalMismatchError,
        MappingError,
        SendError,
        UnknownRegionError,
    )
    from cms_magic.events.convert import Conversion, Event, events_from_frame
    from cms_magic.identity import CredentialsReport, describe_credentials
    from cms_magic.openapi.errors import (
        OpenApiAuthError,
        OpenApiConnectionError,
        OpenApiError,
        OpenApiPermissionError,
        OpenApiServerError,
        OpenApiThrottledError,
    )
    from cms_magic.progress import Progress
    from cms_magic.protocol import MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST
    from cms_magic.readback import ReadProgress, count_events, event_histogram, query_events
    from cms_magic.regions import Region, endpoint
    from cms_magic.results import SendJob, SendResult
    from cms_magic.samples import sample_frame
    from cms_magic.sending.client import Client, send
    from cms_magic.sending.jobs import last_result
    from cms_magic.sending.journal import JournalReport, read_journal
    from cms_magic.sending.retry import RetryPolicy
    from cms_magic.signing import CmsAuth
    from cms_magic.ui.panel.panel import panel

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_EVENTS_PER_REQUEST",
    "AuthError",
    "Batch",
    "BatchPlan",
    "Client",
    "CmsAuth",
    "CmsError",
    "ConfigError",
    "Conversion",
    "Credentials",
    "CredentialsError",
    "CredentialsReport",
    "Event",
    "JournalError",
    "JournalMismatchError",
    "JournalReport",
    "MappingError",
    "OpenApiAuthError",
    "OpenApiConnectionError",
    "OpenApiError",
    "OpenApiPermissionError",
    "OpenApiServerError",
    "OpenApiThrottledError",
    "Progress",
    "ReadProgress",
    "RefreshingCredentials",
    "Region",
    "RetryPolicy",
    "Secret",
    "SendError",
    "SendJob",
    "SendResult",
    "UnknownRegionError",
    "__version__",
    "count_events",
    "describe_credentials",
    "endpoint",
    "event_histogram",
    "events_from_frame",
    "last_result",
    "load_ipython_extension",
    "panel",
    "plan_batches",
    "query_events",
    "read_journal",
    "regions",
    "resolve_credentials",
    "sample_frame",
    "send",
    "unload_ipython_extension",
]

# name -> submodule that defines it
_LAZY: dict[str, str] = {
    "MAX_BODY_BYTES": "protocol",
    "MAX_EVENTS_PER_REQUEST": "protocol",
    "AuthError": "errors",
    "Batch": "batching",
    "BatchPlan": "batching",
    "CmsAuth": "signing",
    "CmsError": "errors",
    "ConfigError": "errors",
    "Conversion": "events",
    "Credentials": "credentials",
    "CredentialsError": "errors",
    "Event": "events",
    "MappingError": "errors",
    "Region": "regions",
    "SendError": "errors",
    "SendResult": "results",
    "Secret": "credentials",
    "UnknownRegionError": "errors",
    "endpoint": "regions",
    "events_from_frame": "events",
    "plan_batches": "batching",
    "resolve_credentials": "credentials",
    "send": "sending.client",
    "Client": "sending.client",
    "Progress": "progress",
    "RetryPolicy": "sending.retry",
    "SendJob": "results",
    "last_result": "sending.jobs",
    "sample_frame": "samples",
    "panel": "ui.panel.panel",
    "RefreshingCredentials": "credentials",
    "JournalError": "errors",
    "JournalMismatchError": "errors",
    "CredentialsReport": "identity",
    "describe_credentials": "identity",
    "OpenApiError": "openapi.errors",
    "OpenApiAuthError": "openapi.errors",
    "OpenApiConnectionError": "openapi.errors",
    "OpenApiPermissionError": "openapi.errors",
    "OpenApiServerError": "openapi.errors",
    "OpenApiThrottledError": "openapi.errors",
    "query_events": "readback",
    "count_events": "readback",
    "event_histogram": "readback",
    "ReadProgress": "readback",
    "read_journal": "sending.journal",
    "JournalReport": "sending.journal",
}


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cms_magic``: register ``%%cms_event``, ``%cms`` and ``%config CmsMagic``.

    The magic module (and IPython) is imported only here, so ``import cms_magic``
    stays light. Loading twice is harmless.
    """
    from cms_magic.ui.magic.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext cms_magic``: remove the magics and the ``CmsMagic`` configurable."""
    from cms_magic.ui.magic.magics import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name == "regions":
        # The submodule is callable: ``cms_magic.regions()`` lists the catalog
        # and ``cms_magic.regions.endpoint`` is the resolver module's function.
        return importlib.import_module("cms_magic.regions")
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'cms_magic' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cms_magic.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
