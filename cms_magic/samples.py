"""A bundled sample DataFrame for demos, notebooks and tests.

1,200 synthetic incident and deployment records (hosts, services, severities,
messages with Chinese text and emoji, tz-aware timestamps at +08:00), shipped as
``cms_magic/data/sample_incidents.csv``.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["sample_frame"]


def sample_frame() -> pd.DataFrame:
    """The sample incidents: columns time, host, service, severity, message, group_id."""
    import pandas as pd

    with (
        resources.files("cms_magic")
        .joinpath("data/sample_incidents.csv")
        .open(encoding="utf-8") as handle
    ):
        frame = pd.read_csv(handle)
    frame["time"] = pd.to_datetime(frame["time"], format="ISO8601")
    return frame
