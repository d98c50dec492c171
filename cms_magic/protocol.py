"""Facts of the upload API, each one named constant: limits, the path, the group id range.

Source: the CloudMonitor document "Report custom events by sending an HTTP
request" and the protocol notes: at most 100 events and 500 KB of body per
request, and 20 report requests per second per Alibaba Cloud account, shared by
every client of that account.
"""

from __future__ import annotations

from typing import Final

#: At most this many events in one request.
MAX_EVENTS_PER_REQUEST: Final = 100

#: At most this many bytes of request body (500 KB, read as 500 * 1024).
MAX_BODY_BYTES: Final = 500 * 1024

#: Report requests per second allowed per account (all its clients together).
DEFAULT_QPS: Final = 20.0

#: The only path events are uploaded to.
UPLOAD_PATH: Final = "/event/custom/upload"

#: The service accepts a request whose Date is within this many seconds of its clock.
MAX_CLOCK_SKEW_SECONDS: Final = 15 * 60

#: The largest group id (the document's type is Long: a signed 64-bit integer).
GROUP_ID_MAX: Final = 2**63 - 1

#: The fields of an event, as the service spells them; any other key is refused.
EVENT_FIELDS: Final = ("content", "groupId", "name", "time")
