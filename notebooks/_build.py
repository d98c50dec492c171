"""Generate the notebooks of this folder (cells, ids and metadata; no outputs).

The notebooks are committed without outputs, and this file is their source: edit
a cell here, then run ``python notebooks/_build.py`` to rewrite the ``.ipynb``
files. ``python notebooks/_build.py --check`` exits 1 if a committed notebook
differs from what this file generates (``tests/test_notebooks.py`` runs it).

Cell ids are stable and meaningful: the tests and ``python -m cms_magic.quickstart``
find cells by id (``real-cloud``, ``summary``...).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def md(cell_id: str, text: str) -> nbformat.NotebookNode:
    cell = new_markdown_cell(textwrap.dedent(text).strip("\n"))
    cell.id = cell_id
    return cell


def code(cell_id: str, text: str) -> nbformat.NotebookNode:
    cell = new_code_cell(textwrap.dedent(text).strip("\n"))
    cell.id = cell_id
    return cell


def notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    return nb


# The switch cell, the same in every notebook: the only cell to change for the real cloud.
REAL_CLOUD_MD = """\
    ## Where the events go

    **This is the only cell to change to use the real CloudMonitor.** With
    `USE_REAL_CLOUD = False` (the default) everything goes to the **local
    emulator**, a signature-verifying stand-in for the upload endpoint that
    `cms_magic` starts on 127.0.0.1 with public demo credentials: nothing leaves
    this machine.

    With `USE_REAL_CLOUD = True`, sends go to the region in
    `ALIBABA_CLOUD_REGION_ID` (default `cn-hangzhou`), signed with the credentials
    found in the environment (`ALIBABA_CLOUD_ACCESS_KEY_ID` and
    `ALIBABA_CLOUD_ACCESS_KEY_SECRET`, plus `ALIBABA_CLOUD_SECURITY_TOKEN` for an
    STS token) or in an `aliyun` CLI profile. Never type a secret into a
    notebook: it would be saved with it. `%cms whoami` shows the target and the
    key that would sign, its id masked."""

REAL_CLOUD_CODE = """\
    # >>> SWITCH TO THE REAL CLOUD: set USE_REAL_CLOUD = True (region and credentials from the environment)
    USE_REAL_CLOUD = False

    import os

    REGION = os.environ.get("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou")
    if USE_REAL_CLOUD:
        %config CmsMagic.endpoint = None
        %config CmsMagic.region = REGION
    else:
        %config CmsMagic.endpoint = "local"
    %cms whoami"""


# --------------------------------------------------------------------------- 01 quick start

QUICKSTART = notebook(
    md(
        "intro",
        """\
        # Quick start: DataFrame rows as CloudMonitor custom events

        This notebook reports a few incidents from a pandas DataFrame as Alibaba
        Cloud CloudMonitor **custom events** with one `%%cms_event` cell, then reads
        back what happened to every row, and opens the point-and-click panel.

        It runs top to bottom as it is (*Run → Run All Cells*), against the local
        emulator: nothing leaves this machine unless you flip the switch in step 2.
        """,
    ),
    md(
        "load-md",
        """\
        ## 1. Load the extension

        `%load_ext cms_magic` registers `%%cms_event` (send events), `%cms`
        (helpers: `%cms help`) and the `CmsMagic` settings (`%config CmsMagic`).
        `%%cms_event?` lists every option.
        """,
    ),
    code("load", "%load_ext cms_magic"),
    md("real-cloud-md", REAL_CLOUD_MD.replace("## Where", "## 2. Where")),
    code("real-cloud", REAL_CLOUD_CODE),
    md(
        "data-md",
        """\
        ## 3. A small DataFrame

        One row per incident. The times are tz-aware (Asia/Shanghai, +08:00) and keep
        their offset in the events; naive times would be read in this machine's time
        zone, or in the zone given with `--tz`. Messages may be any Unicode text.
        """,
    ),
    code(
        "data",
        """\
        import pandas as pd

        incidents = pd.DataFrame(
            {
                "time": pd.to_datetime(
                    [
                        "2026-11-20 09:12:03",
                        "2026-11-20 09:13:41",
                        "2026-11-20 09:20:00",
                        "2026-11-20 09:31:17",
                        "2026-11-20 09:45:52",
                    ]
                ).tz_localize("Asia/Shanghai"),
                "host": ["web-01", "web-02", "db-01", "web-01", "cache-03"],
                "severity": ["WARN", "CRITICAL", "INFO", "INFO", "WARN"],
                "message": [
                    "p99 latency 870 ms over 5 min",
                    "HTTP 5xx rate 12% on /checkout",
                    "nightly vacuum finished in 42 s",
                    "deployment v2.14.5 finished",
                    "缓存命中率下降到 71%",
                ],
            }
        )
        incidents""",
    ),
    md(
        "send-md",
        """\
        ## 4. Send them: one `%%cms_event` cell

        - `result`, the first word, names the variable that receives the result;
        - `--name` gives every event the same name (`--name-col` takes it from a column);
        - `--content-template` builds each event's content from its row (by default
          the content is the whole row as JSON; `--content-col` takes a column);
        - `--time-col` gives the event time.

        The cell body is ordinary Python, and its last value, a DataFrame, is what is
        sent: here, the incidents that are not just `INFO`. A progress bar and a
        summary line appear under the cell. Behind it, the rows are validated, packed
        into requests of at most 100 events and 500 KB, signed, and sent at most 20
        requests per second (the account's quota).
        """,
    ),
    code(
        "send",
        """\
        %%cms_event result --name incident --content-template "[{severity}] {host}: {message}" --time-col time
        incidents[incidents.severity != "INFO"]""",
    ),
    md(
        "result-md",
        """\
        ## 5. The result

        `result` is a `cms_magic.SendResult`. `result.ok` is true only when every row
        was **accepted**: the service answered HTTP 200 with code `"200"`. The other
        outcomes are `rejected` (the row cannot be sent as it is; the reason says
        why), `not_sent` (safe to send again: `result.retry()`) and `unknown` (the
        request went out but no answer came back: it may have arrived).
        """,
    ),
    code(
        "result",
        """\
        assert result.ok, result.summary()
        assert result.accepted == 3
        result""",
    ),
    md(
        "summary-md",
        """\
        `result.events` is the result frame: one row per input row, indexed like the
        input (rows 0, 1 and 4 here), with its status, the reason when it was not
        accepted, its batch (request), the attempts it took and the service's request
        id. `result.failed()` gives back the source rows that were not accepted.
        """,
    ),
    code(
        "summary",
        """\
        print(result.summary())
        result.events""",
    ),
    md(
        "requests-md",
        """\
        `result.requests` has one row per HTTP request: how many events and bytes it
        carried, the HTTP status, the service's code and message, its request id,
        attempts and latency.
        """,
    ),
    code("requests", "result.requests"),
    md(
        "received-md",
        """\
        ## 6. What arrived

        The emulator checked each request as the service does (headers, body digest,
        date, signature, quota, event fields) and kept the events it accepted, exactly
        as they were sent. The times kept their +08:00 offset. (Against the real
        cloud, look in the CloudMonitor console under *Event Monitoring → Custom
        Events*.)
        """,
    ),
    code(
        "received",
        """\
        from cms_magic import emulator

        if USE_REAL_CLOUD:
            print("sent to", result.endpoint)
        else:
            received = pd.DataFrame(emulator.embedded().events()[-result.accepted :])
            assert received["content"].iloc[0] == "[WARN] web-01: p99 latency 870 ms over 5 min"
            assert received["time"].iloc[0] == "20261120T091203.000+0800"
            display(received)""",
    ),
    md(
        "panel-md",
        """\
        ## 7. The panel

        The same, point and click: `cms_magic.panel(incidents)` (or `%cms panel`).
        The **Send** tab chooses the target (the local emulator, the public endpoint
        or a region), the DataFrame and its mapping, with a live preview of the first
        events; *Dry run* and *Send* run in the background, and the results come back
        as tables, with *Retry failed*. The **Regions** tab lists the regions and
        probes their endpoints (see `03-explore-regions.ipynb`).
        """,
    ),
    code(
        "panel",
        """\
        import cms_magic

        panel = cms_magic.panel(incidents, region=REGION if USE_REAL_CLOUD else "local")
        panel""",
    ),
    md(
        "panel-dry-run-md",
        """\
        Its buttons are methods too, so a panel can be driven from code. A dry run does
        everything but the POST: the panel's results show what would be sent.
        """,
    ),
    code(
        "panel-dry-run",
        """\
        panel.name_value.value = "incident"
        panel.dry_run()
        assert panel.wait(60)
        print(panel.result.summary())
        assert panel.result.counts()["dry_run"] == len(incidents)""",
    ),
    md(
        "next",
        """\
        ## Next

        - `02-bulk-report.ipynb`: 100,000 alerts, mapping columns, a background send
          with progress, the quota math, failures and `retry()`;
        - `03-explore-regions.ipynb`: the regions, public and internal endpoints, and
          the probe;
        - `04-cell-output-events.ipynb`: a cell's printed output as an event, `--raw`,
          `--json` and dry runs.
        """,
    ),
)


# --------------------------------------------------------------------------- 02 bulk report

BULK = notebook(
    md(
        "intro",
        """\
        # Bulk report: 100,000 alerts

        A day of alerts from three data centres, as an alerting system would export
        it, reported as CloudMonitor custom events. This notebook shows:

        1. a realistic synthetic alert log: hosts, severities, messages (some in
           Chinese), timestamps logged in three time zones;
        2. how its columns map to event fields;
        3. the quota math: how long 100,000 events take at 20 requests per second;
        4. a background send with progress;
        5. what happens to every row when things go wrong: rejected rows, rows not
           sent, rows whose fate is unknown, and `retry()`;
        6. fixing the rejected rows and sending them again.

        It runs against the local emulator, which can be told to misbehave the way a
        network and a service sometimes do.
        """,
    ),
    code(
        "load",
        """\
        %load_ext cms_magic
        import numpy as np
        import pandas as pd

        import cms_magic""",
    ),
    md(
        "real-cloud-md",
        REAL_CLOUD_MD
        + """

    `ROWS` is the size of the log. Against the real cloud, 100,000 events use about
    50 seconds of the account's quota (shared with everything else that reports with
    it): lower `ROWS` first.""",
    ),
    code(
        "real-cloud",
        REAL_CLOUD_CODE.replace(
            "USE_REAL_CLOUD = False\n",
            "USE_REAL_CLOUD = False\n    ROWS = 100_000  # the size of the alert log\n",
        ),
    ),
    md(
        "data-md",
        """\
        ## 1. The alert log

        Each data centre stamps its alerts in its own local time, with the offset
        (`logged_at`: `+0800` in Hangzhou, `+0100` in Frankfurt, `-0500` in Virginia).
        Hangzhou's messages are in Chinese. Like real exports, the log has problems:
        12 alerts lost their message, and 5 carry a `<script>` payload copied from a
        web firewall's log, which we will make the (emulated) service refuse. The
        random generator is seeded: every run builds the same log.
        """,
    ),
    code(
        "data",
        """\
        rng = np.random.default_rng(20261120)

        SITES = {  # site: (time zone of its log, share of the alerts, application group id)
            "hangzhou": ("Asia/Shanghai", 0.5, 1001),
            "frankfurt": ("Europe/Berlin", 0.3, 1002),
            "virginia": ("America/New_York", 0.2, 1003),
        }
        ALERTS = {  # alert: (severity, share, message, message in Chinese)
            "cpu_high": ("WARN", 0.3, "CPU at {v}% for 5 min on {host}", "{host} CPU 使用率 {v}%，持续 5 分钟"),
            "disk_full": ("CRITICAL", 0.15, "disk /data {v}% full on {host}", "{host} 磁盘 /data 已用 {v}%"),
            "http_5xx": ("CRITICAL", 0.1, "HTTP 5xx rate {v}% on {host}", "{host} HTTP 5xx 错误率 {v}%"),
            "latency_p99": ("WARN", 0.3, "p99 latency {v}0 ms on {host}", "{host} p99 延迟 {v}0 毫秒"),
            "deploy_done": ("INFO", 0.15, "deployment finished on {host} ✅", "{host} 部署完成 ✅"),
        }

        site = rng.choice(list(SITES), ROWS, p=[share for _, share, _ in SITES.values()])
        alert = rng.choice(list(ALERTS), ROWS, p=[a[1] for a in ALERTS.values()])
        roles = rng.choice(["web", "api", "db", "cache", "mq"], ROWS)
        numbers = rng.integers(1, 40, ROWS)
        host = [f"{r}-{n:02d}.{s[:3]}" for r, n, s in zip(roles, numbers, site)]
        values = rng.integers(70, 100, ROWS)
        message = [
            ALERTS[a][3 if s == "hangzhou" else 2].format(v=v, host=h)
            for a, s, v, h in zip(alert, site, values, host)
        ]

        # one day of alerts, each logged in its data centre's local time, with the offset
        instants = pd.Timestamp("2026-11-20", tz="UTC") + pd.to_timedelta(
            np.sort(rng.integers(0, 86_400, ROWS)), unit="s"
        )
        logged_at = np.empty(ROWS, dtype=object)
        for name, (zone, _, _) in SITES.items():
            here = site == name
            logged_at[here] = instants[here].tz_convert(zone).strftime("%Y-%m-%dT%H:%M:%S%z")

        alerts = pd.DataFrame(
            {
                "logged_at": logged_at,
                "site": site,
                "host": host,
                "severity": [ALERTS[a][0] for a in alert],
                "alert": alert,
                "message": message,
                "group_id": [SITES[s][2] for s in site],
            }
        )

        # the export's problems: lost messages, and a payload the (emulated) service refuses
        broken = rng.choice(np.arange(100, ROWS), 17, replace=False)
        alerts.loc[broken[:12], "message"] = ""
        alerts.loc[broken[12:], "message"] = "WAF blocked <script>alert(1)</script> from " + alerts.loc[broken[12:], "host"]

        print(f"{len(alerts):,} alerts, {alerts.memory_usage(deep=True).sum() / 2**20:.0f} MiB")
        alerts.head()""",
    ),
    md(
        "times-md",
        """\
        ### Times across time zones

        A column of strings with mixed offsets is parsed row by row when it is sent,
        which takes tens of seconds for 100,000 rows. Parse it once instead: `pd.to_datetime(..., utc=True)` gives a tz-aware
        column, which is converted in one vectorised step. An event's time is an
        instant with an offset, so nothing is lost; how `cms_magic` writes a time:

        - a **tz-aware** time keeps its own offset (here UTC, `+0000`; convert the
          column with `.dt.tz_convert(...)` to report in another zone);
        - a **naive** time is read in the zone given with `tz=` (`--tz`), by default
          this machine's; a wall time that does not exist in that zone (a daylight
          saving change) is rejected, not guessed.
        """,
    ),
    code(
        "times",
        """\
        alerts["time"] = pd.to_datetime(alerts["logged_at"], utc=True, format="ISO8601")

        first = alerts.head(3)


        def event_times(frame, **options):
            conversion = cms_magic.events_from_frame(frame, name="t", content_col="message", time_col="time", **options)
            return [event.time for event in conversion.events()]


        pd.DataFrame(
            {
                "logged_at": first["logged_at"],
                "tz-aware, UTC": event_times(first),
                "tz-aware, converted to Asia/Shanghai": event_times(
                    first.assign(time=first["time"].dt.tz_convert("Asia/Shanghai"))
                ),
                "naive Frankfurt wall time, read with tz='Europe/Berlin'": event_times(
                    first.assign(time=first["time"].dt.tz_convert("Europe/Berlin").dt.tz_localize(None)),
                    tz="Europe/Berlin",
                ),
            }
        )""",
    ),
    md(
        "mapping-md",
        """\
        ## 2. Mapping columns to event fields

        An event has a `name`, a `content`, an optional `groupId` (the application
        group) and an optional `time`. Here: the name from `alert`, the content from
        `message`, the group id from `group_id` (one application group per data
        centre) and the time from `time`. Other columns are not sent.

        `cms_magic.events_from_frame` applies a mapping without sending anything: the
        events as they will be sent, and the rows that cannot become events, each
        with its reason. Nothing is dropped silently.
        """,
    ),
    code(
        "mapping",
        """\
        MAPPING = dict(name_col="alert", content_col="message", group_id_col="group_id", time_col="time")
        conversion = cms_magic.events_from_frame(alerts, **MAPPING)

        print(f"{len(conversion):,} events; {len(conversion.rejected)} rows cannot be sent as they are")
        for payload in conversion.payloads[:3]:
            print(payload.decode())
        position, reason = next(iter(conversion.rejected.items()))
        print(f"row {position}: {reason}")
        assert len(conversion.rejected) == 12  # the lost messages""",
    ),
    md(
        "quota-md",
        """\
        ## 3. The quota math

        The service takes at most **100 events** and **500 KB** per request, and at
        most **20 requests per second per account**, shared by every client of the
        account. So:

        - 100,000 events ÷ 100 per request = **1,000 requests**;
        - 1,000 requests ÷ 20 requests per second = **50 seconds**, at the very least.

        The sender keeps to the quota itself (a token bucket shared by every send of
        the process with the same AccessKey) and slows down further if the service
        says it is throttling. A dry run plans the real batches (by count and by
        encoded bytes) and signs them, without sending anything:
        """,
    ),
    code(
        "quota",
        """\
        %cms_event plan --df alerts --name-col alert --content-col message --group-id-col group_id --time-col time --dry-run --quiet

        planned = plan.counts()["dry_run"]
        requests_needed = plan.events["batch"].nunique()
        print(f"{planned:,} events in {requests_needed:,} requests")
        print(f"at 20 requests per second: {requests_needed / 20:.0f} s at least")
        assert requests_needed == -(-planned // 100)  # no request was cut short by the 500 KB limit""",
    ),
    md(
        "lift-md",
        """\
        ## 4. Emulator only: lift the quota, and inject faults

        The emulator enforces the same 20 requests per second as the service (beyond
        it, it answers `403 Throttling`), and the client keeps to 20 by default, so
        this send would take the 50 seconds computed above. To keep the notebook
        quick, we lift both limits, **for the emulator only**: against the real
        service keep `CmsMagic.qps` at 20.

        We also make the emulator misbehave the way networks and services sometimes
        do (`cms_magic.emulator.Faults`; seeded, so every run sees about the same
        faults, give or take the order in which concurrent requests arrive):

        - 1% of requests answer `503 Service Unavailable` (nothing stored);
        - 0.3% of requests are stored, but the connection drops before the answer;
        - an event whose content contains `<script>` makes its request a `400`.

        And we switch the client's retries off (default: 4 retries with exponential
        backoff), so that the failures stay visible.
        """,
    ),
    code(
        "lift",
        """\
        from cms_magic import emulator
        from cms_magic.emulator import Faults

        if not USE_REAL_CLOUD:
            emu = emulator.embedded()
            emu.reset()  # forget the events and requests of earlier runs
            emu.emulator.set_qps(0)  # no quota (the service: 20 requests per second)
            emu.emulator.set_faults(Faults(seed=7, error_503=0.01, reset_after=0.003, poison_marker="<script>"))
            %config CmsMagic.qps = 0
            %config CmsMagic.max_retries = 0""",
    ),
    md(
        "send-md",
        """\
        ## 5. The background send

        `--background` returns a `SendJob` at once and the kernel stays free; the
        progress bar keeps updating under the cell. `job.progress` is the latest
        snapshot, `job.wait()` waits for the end, `job.result()` gives the result and
        `job.cancel()` stops at the next batch boundary (what was not sent stays
        `not_sent`, and `retry()` finishes it).
        """,
    ),
    code(
        "send",
        "%cms_event job --df alerts --name-col alert --content-col message --group-id-col group_id --time-col time --background",
    ),
    code(
        "wait",
        """\
        print(job)  # running, or already done: the emulator is fast
        assert job.wait(300)
        result = job.result()
        result""",
    ),
    md(
        "outcomes-md",
        """\
        ## 6. What happened to every row

        Every input row has exactly one status; the reasons say why a row was not
        accepted:

        - **rejected**: the 12 empty messages never left the machine (an event's
          content must not be empty); the `<script>` rows made their requests fail
          with `400`, and the sender bisected those requests to find exactly the
          offending events, so their neighbours were accepted (a `<script>` row whose
          request met a `503` first is `not_sent` for now);
        - **not sent**: the requests answered `503`; nothing was stored, safe to send
          again;
        - **unknown**: the connection dropped after the request went out; the events
          may have arrived, and the API has no way to tell.
        """,
    ),
    code(
        "outcomes",
        """\
        counts = result.counts()
        print(result.summary())
        if not USE_REAL_CLOUD:
            assert counts["rejected"] >= 12 and counts["not_sent"] > 0 and counts["unknown"] > 0

        not_accepted = result.events[result.events["status"] != "accepted"]
        not_accepted.groupby(["status", "reason"], observed=True).size().rename("rows").to_frame()""",
    ),
    md(
        "requests-md",
        """\
        The requests tell the same story: 1,000 batches, plus the bisecting requests.
        """,
    ),
    code(
        "requests",
        """\
        result.requests.groupby(["http_status", "outcome"], dropna=False, observed=True).size().rename("requests").to_frame()""",
    ),
    md(
        "retry-md",
        """\
        ## 7. `retry()`

        The outage is over (we stop the 503s and the dropped connections). `retry()`
        resends the `not_sent` rows, and only them, with the same target and mapping,
        and returns a new result over **all** the rows: rows already accepted keep
        their status.
        """,
    ),
    code(
        "retry",
        """\
        if not USE_REAL_CLOUD:
            emu.emulator.set_faults(Faults(poison_marker="<script>"))

        again = result.retry()
        print(again.summary())
        assert again.counts()["not_sent"] == 0
        if not USE_REAL_CLOUD:
            assert again.counts()["rejected"] == 17  # the 12 empty messages and the 5 <script> rows""",
    ),
    md(
        "unknown-md",
        """\
        ## 8. Emulator only: why `unknown` rows are not resent by default

        The emulator shows what the real service cannot tell us: the `unknown` rows did
        arrive. It holds every accepted event **and** every `unknown` one.
        `retry(include_unknown=True)` would send them anyway; the emulator then holds
        each of them twice. Against the real service, resend `unknown` rows only when
        a duplicate costs less than a lost event.
        """,
    ),
    code(
        "unknown",
        """\
        final = again
        if not USE_REAL_CLOUD:
            unknown = again.counts()["unknown"]
            print(f"the emulator holds {len(emu.events()):,} events: {again.accepted:,} accepted + {unknown:,} unknown")
            assert len(emu.events()) == again.accepted + unknown

            final = again.retry(include_unknown=True)
            duplicates = len(emu.events()) - final.accepted
            print(final.summary())
            print(f"after retry(include_unknown=True): {duplicates:,} events are stored twice")
            assert duplicates == unknown""",
    ),
    md(
        "fix-md",
        """\
        ## 9. Fix the rejected rows, then send them

        `retry()` does not resend rejected rows: they would fail the same way (its
        `include_rejected=True` resends them as they are). `failed()` gives back the
        source rows that were not accepted, with all their columns (here without the
        `unknown` ones, if any are left: they may have arrived): fix them and send the
        fixed rows.
        """,
    ),
    code(
        "fix",
        """\
        bad = final.failed(include_unknown=False)
        fixed = bad.assign(
            message=bad["message"]
            .replace("", "(no message: the exporter lost it)")
            .str.replace("<script>", "&lt;script&gt;", regex=False)
        )
        fixed[["alert", "host", "message"]].join(final.events["reason"])""",
    ),
    code(
        "fix-send",
        """\
        %cms_event fixed_result --df fixed --name-col alert --content-col message --group-id-col group_id --time-col time

        assert fixed_result.ok
        delivered = final.accepted + fixed_result.accepted
        print(f"{delivered:,} of {len(alerts):,} alerts are in CloudMonitor")
        assert delivered + final.counts()["unknown"] == len(alerts)""",
    ),
    md(
        "restore-md",
        """\
        ## 10. Put the limits back

        The quota and the retries return to their defaults, and the emulator stops
        injecting faults.
        """,
    ),
    code(
        "restore",
        """\
        if not USE_REAL_CLOUD:
            emu.emulator.set_qps(20)
            emu.emulator.set_faults(Faults())
        %config CmsMagic.qps = 20
        %config CmsMagic.max_retries = 4""",
    ),
)


# --------------------------------------------------------------------------- 03 regions

REGIONS = notebook(
    md(
        "intro",
        """\
        # Regions and endpoints

        Where CloudMonitor custom events can be sent: the region catalog, the public
        and the internal endpoints, which of them answer from here (the probe), and
        the **Regions** tab of the panel.

        The probe opens TCP connections. As it is (`USE_REAL_CLOUD = False`) this
        notebook contacts nothing but this machine: the probe's targets are the local
        emulator and a closed local port, and the real endpoints' names are not even
        looked up.
        """,
    ),
    code("load", "%load_ext cms_magic"),
    md(
        "real-cloud-md",
        REAL_CLOUD_MD
        + """

    Here the switch also decides what the probe contacts: with `True`, it resolves
    the real endpoints' names and opens (then at once closes) a TCP connection to
    each; it sends no request.""",
    ),
    code("real-cloud", REAL_CLOUD_CODE),
    md(
        "catalog-md",
        """\
        ## 1. The catalog

        `%cms regions` (or `cms_magic.regions.regions_frame()`) lists every region of
        the CloudMonitor documentation: its id, its name and its endpoints. It is data
        shipped with the package (`regions.json`), so listing it contacts nothing.
        """,
    ),
    code("catalog", "%cms regions"),
    code(
        "catalog-api",
        """\
        import cms_magic

        ids = [region.id for region in cms_magic.regions()]
        print(f"{len(ids)} regions: {', '.join(ids)}")
        assert "cn-hangzhou" in ids and "eu-central-1" in ids""",
    ),
    md(
        "endpoints-md",
        """\
        ## 2. Public and internal endpoints

        - The **public endpoint** (HTTPS) is the same for every region: the
          documentation lists one. Events go to the account whose key signs them. It
          is what `--region ID` resolves to (without `--internal`), and what
          `cms_magic.endpoint()` returns without arguments.
        - Each region also has an **internal endpoint** (HTTP, on Alibaba Cloud's
          internal network): it answers only from inside Alibaba Cloud, for example
          from an ECS instance in that region, and its traffic never crosses the
          internet. Choose it with `--region ID --internal` (`internal=True` in
          Python, *internal* in the panel).
        - An explicit URL (`--endpoint URL`) is checked and normalised: for a proxy,
          a private gateway or an emulator.

        `cms_magic.endpoint()` resolves what a caller wrote into the URL a send uses:
        """,
    ),
    code(
        "endpoints",
        """\
        from cms_magic import endpoint

        print(endpoint())  # the public endpoint
        print(endpoint("eu-central-1"))  # a region: the public endpoint too
        print(endpoint("eu-central-1", internal=True))  # the region's internal endpoint
        print(endpoint("HTTP://127.0.0.1:8080/"))  # an explicit URL, normalised
        assert endpoint("eu-central-1", internal=True) == "http://metrichub-eu-central-1.aliyun.com"
        assert endpoint("cn-beijing") == endpoint()""",
    ),
    md(
        "typo-md",
        """\
        A region id that does not exist is an error that lists the valid ones (the
        magic shows it as one line):
        """,
    ),
    code(
        "typo",
        """\
        try:
            endpoint("cn-hanzhou")
        except cms_magic.UnknownRegionError as error:
            print(error)""",
    ),
    md(
        "probe-md",
        """\
        ## 3. Which endpoints answer from here?

        `cms_magic.probe.probe_frame(targets)` resolves each target's host name and
        opens a TCP connection to it, all targets at once, each step bounded by
        `timeout` seconds. It sends no HTTP request: nothing is signed, nothing is
        uploaded. An unreachable endpoint is an ordinary outcome with a reason, never
        an exception. From outside Alibaba Cloud, the internal endpoints are expected
        to be unreachable.

        As it is, this notebook probes the local emulator (reachable), a closed local
        port (`connection refused`) and a few real endpoints through a resolver that
        looks nothing up (`DNS: not looked up`): what unreachable looks like, without
        leaving this machine. With `USE_REAL_CLOUD = True` it probes every real
        endpoint.
        """,
    ),
    code(
        "targets",
        """\
        import errno
        import socket

        from cms_magic import emulator
        from cms_magic.probe import default_targets, probe_frame


        def offline_resolver(host, port):
            # stands in for DNS while USE_REAL_CLOUD is False: it looks nothing up
            raise OSError(errno.ENETUNREACH, "not looked up (USE_REAL_CLOUD = False)")


        def closed_local_port():
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return sock.getsockname()[1]


        if USE_REAL_CLOUD:
            TARGETS, RESOLVER = default_targets(), None
        else:
            TARGETS = [
                ("local emulator", emulator.embedded().url),
                ("closed port", f"http://127.0.0.1:{closed_local_port()}"),
                *default_targets()[:4],
            ]
            RESOLVER = offline_resolver
        TARGETS""",
    ),
    code(
        "probe",
        """\
        probes = probe_frame(TARGETS, timeout=2.0, resolver=RESOLVER)
        if not USE_REAL_CLOUD:
            reasons = dict(zip(probes["target"], probes["reason"]))
            assert probes["target"].iloc[0] == "local emulator" and probes["status"].iloc[0] == "reachable"
            assert reasons["closed port"] == "TCP: connection refused"
            assert reasons["public"] == "DNS: not looked up (USE_REAL_CLOUD = False)"
        probes""",
    ),
    md(
        "panel-md",
        """\
        ## 4. The Regions tab of the panel

        The panel's second tab shows the catalog and a **Probe** button; until it is
        clicked, nothing is contacted. The results come back as a table (reachable
        first, fastest first, with a latency bar), and choosing a region in the list
        makes it the send target: its public endpoint, unless the tab's "internal
        endpoint" toggle says internal (reachable only inside that region's network).
        Here the panel opens on the Regions tab and probes the same targets as above.
        """,
    ),
    code(
        "panel",
        """\
        import functools

        from cms_magic.probe import probe

        panel = cms_magic.panel(
            probe_targets=TARGETS,
            prober=functools.partial(probe, TARGETS, timeout=2.0, resolver=RESOLVER),
            tab="regions",
        )
        panel""",
    ),
    md(
        "click-md",
        """\
        `panel.probe()` is what the Probe button does: it probes in the background and
        fills the tab above; `panel.wait()` waits for it.
        """,
    ),
    code(
        "click",
        """\
        panel.probe()
        assert panel.wait(30)
        for result in panel.probe_results:
            print(result.line())
        if not USE_REAL_CLOUD:
            assert sum(result.reachable for result in panel.probe_results) == 1""",
    ),
    md(
        "choose-md",
        """\
        Choosing a row in the list (here from code: `panel.choose_target`) makes that
        region the target of the **Send** tab (the tab you are on stays); here its
        internal endpoint, as the toggle would:
        """,
    ),
    code(
        "choose",
        """\
        panel.choose_target("eu-central-1", internal=True)
        assert panel.tabs.selected_index == 1  # still on the Regions tab
        print(panel.url_label_text())
        assert panel.url_label_text() == "http://metrichub-eu-central-1.aliyun.com"
        panel.region.value = "local"  # back to the emulator
        assert panel.url_label_text() == emulator.embedded().url""",
    ),
)


# --------------------------------------------------------------------------- 04 cell output

CELL_OUTPUT = notebook(
    md(
        "intro",
        """\
        # A cell's output as an event

        Health checks, test runs, deploy notes: whatever a cell prints can become a
        CloudMonitor custom event, so the same notebook that checks something reports
        it. `%%cms_event` takes a cell four ways:

        | the cell | is sent as |
        |---|---|
        | Python that prints (no last value) | one event whose content is what it printed |
        | Python ending with a DataFrame, a dict, a list of dicts or a string | its rows, those events, one event with that content |
        | text, with `--raw` | one event whose content is the text as written, not run |
        | a JSON array, with `--json` | those events |

        and `--dry-run` does everything but the POST.
        """,
    ),
    code("load", "%load_ext cms_magic"),
    md("real-cloud-md", REAL_CLOUD_MD),
    code("real-cloud", REAL_CLOUD_CODE),
    md(
        "health-md",
        """\
        ## 1. A health check

        Without `--df`, `--raw` or `--json`, the cell runs as Python. It shows its
        output as usual, and since it ends without a value, **what it printed**
        (stdout and stderr, in order) is the content of one event, here named
        `health_check`, in application group 1001. The summary line comes after,
        and is not part of the event.
        """,
    ),
    code(
        "health",
        """\
        %%cms_event health --name health_check --group-id 1001
        import platform
        import shutil

        import httpx

        from cms_magic import emulator

        total, used, free = shutil.disk_usage("/")
        print(f"host {platform.node()}, Python {platform.python_version()}")
        print(f"disk /: {used / total:.0%} used, {free / 2**30:.1f} GiB free")
        for service, url in {"event gateway (the local emulator)": emulator.embedded().url + "/_emulator/health"}.items():
            answer = httpx.get(url, timeout=2)
            print(f"{service}: HTTP {answer.status_code} in {answer.elapsed.total_seconds() * 1000:.0f} ms")""",
    ),
    code(
        "health-check",
        """\
        assert health.ok, health.summary()
        if not USE_REAL_CLOUD:
            event = emulator.embedded().events()[-1]
            print(event)
            assert event["name"] == "health_check" and event["groupId"] == 1001
            assert event["content"].startswith("host ") and "HTTP 200" in event["content"]""",
    ),
    md(
        "tests-md",
        """\
        ## 2. A test run

        A test runner prints its report; the report becomes the event. (A failing
        test still sends its report: the event records the failure. `--raise` is about
        the *send*: it makes a send whose events were not all accepted stop a
        papermill or nbclient run.)
        """,
    ),
    code(
        "tests",
        """\
        %%cms_event test_run --name test_run
        import sys
        import unittest

        import cms_magic


        class SmokeTests(unittest.TestCase):
            def test_catalog_has_hangzhou(self):
                self.assertIn("cn-hangzhou", [region.id for region in cms_magic.regions()])

            def test_internal_endpoints_are_http(self):
                self.assertTrue(cms_magic.endpoint("cn-beijing", internal=True).startswith("http://"))


        suite = unittest.defaultTestLoader.loadTestsFromTestCase(SmokeTests)
        outcome = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
        print("PASSED" if outcome.wasSuccessful() else "FAILED", f"({outcome.testsRun} tests)")""",
    ),
    code(
        "tests-check",
        """\
        assert test_run.ok, test_run.summary()
        if not USE_REAL_CLOUD:
            report = emulator.embedded().events()[-1]["content"]
            print(report)
            assert report.endswith("PASSED (2 tests)")""",
    ),
    md(
        "raw-md",
        """\
        ## 3. `--raw`: the cell's text as it is

        The cell is not run: its text, exactly as written (line breaks, Unicode), is
        the content of one event. For deploy notes, changelogs, pasted command output.
        """,
    ),
    code(
        "raw",
        """\
        %%cms_event deploy --raw --name deploy
        release checkout 2.15.0 rolled out to 40 hosts (canary 5% for 30 min, then 100%)
        rollback: helm rollback checkout 41
        发布负责人：值班 SRE""",
    ),
    code(
        "raw-check",
        """\
        assert deploy.ok
        if not USE_REAL_CLOUD:
            content = emulator.embedded().events()[-1]["content"]
            assert content.splitlines() == [
                "release checkout 2.15.0 rolled out to 40 hosts (canary 5% for 30 min, then 100%)",
                "rollback: helm rollback checkout 41",
                "发布负责人：值班 SRE",
            ]""",
    ),
    md(
        "json-md",
        """\
        ## 4. `--json`: events written as JSON

        A JSON array of events with the API's fields (`name`, `content`, `groupId`,
        `time` as `yyyyMMddTHHmmss.SSS+zzzz` or epoch milliseconds). `--name` and
        `--group-id` fill in the events that have none.
        """,
    ),
    code(
        "json",
        """\
        %%cms_event backups --json --name backup --group-id 1001
        [
          {"content": "nightly backup of db-01 finished: 12.4 GiB in 8 min"},
          {"content": "夜间备份完成：db-02，13.1 GiB ✅", "time": "20261120T031500.000+0800"},
          {"name": "backup_failed", "content": "backup of db-03 failed: disk full", "groupId": 1002}
        ]""",
    ),
    code(
        "json-check",
        """\
        assert backups.ok and backups.accepted == 3
        if not USE_REAL_CLOUD:
            sent = emulator.embedded().events()[-3:]
            assert [e["name"] for e in sent] == ["backup", "backup", "backup_failed"]
            assert [e["groupId"] for e in sent] == [1001, 1001, 1002]
        backups.events""",
    ),
    md(
        "dry-run-md",
        """\
        ## 5. Dry run

        `--dry-run` validates, batches and signs, but sends nothing: every row gets the
        status `dry_run`, and the first request is printed as it would go out, its
        headers (the `Authorization` header with the key id masked and without the
        signature) and its body. Handy to check a mapping, or what a real target
        would receive, before sending.
        """,
    ),
    code(
        "dry-run",
        """\
        %%cms_event preview --raw --name deploy --dry-run
        release checkout 2.15.1: configuration change only""",
    ),
    code(
        "dry-run-check",
        """\
        assert preview.counts()["dry_run"] == 1
        assert preview.requests.empty  # no request went out
        print(preview.preview["headers"]["authorization"])
        assert preview.preview["headers"]["authorization"].endswith(":<signature>")""",
    ),
    md(
        "received-md",
        """\
        ## 6. What the emulator received

        The health check, the test report, the deploy note and the three backups: six
        events, and none from the dry run.
        """,
    ),
    code(
        "received",
        """\
        import pandas as pd

        if USE_REAL_CLOUD:
            print("sent to", deploy.endpoint)
        else:
            received = pd.DataFrame(emulator.embedded().events()[-6:])
            assert list(received["name"]) == ["health_check", "test_run", "deploy", "backup", "backup", "backup_failed"]
            display(received)""",
    ),
)


# --------------------------------------------------------------------------- 05 roles and read-back

ROLES = notebook(
    md(
        "intro",
        """\
        # Role credentials, refreshed during long sends, and reading events back

        Inside Alibaba Cloud most notebooks have no AccessKey of their own: an ECS or
        PAI-DSW instance has a RAM role, a pod on ACK has RRSA (OIDC), a team has a
        `RamRoleArn` profile. `cms_magic` takes those credentials as they are
        (README, *Credentials*), refreshes them ahead of expiry during a long send,
        and says where they come from with `%cms whoami`. This notebook uses a
        `ram_role_arn` profile against the local emulator, which also answers STS
        `AssumeRole`, then reads the events back with the CloudMonitor OpenAPI.
        """,
    ),
    md("load-md", "## 1. Load the extension"),
    code("load", "%load_ext cms_magic"),
    md("real-cloud-md", REAL_CLOUD_MD.replace("## Where", "## 2. Where")),
    code("real-cloud", REAL_CLOUD_CODE),
    md(
        "role-md",
        """\
        ## 3. A role profile

        For the emulator, a throwaway `credentials.ini` holds a `ram_role_arn` profile:
        the emulator's public demo key, allowed to assume a role. Credentials minted by
        the emulator's STS live 15 minutes here. On the real cloud, keep your own
        profile (in `~/.alibabacloud/credentials.ini` or `aliyun configure --mode
        RamRoleArn`) and set `PROFILE` to its name. `%cms whoami` asks the source for
        credentials and says which role, which profile and when they expire: never
        the secret or the token.
        """,
    ),
    code(
        "role",
        """\
        import pathlib
        import tempfile

        PROFILE = "cms-writer"
        if not USE_REAL_CLOUD:
            from cms_magic.emulator import embedded

            server = embedded(sts_lifetime=900)  # the local emulator answers STS too
            demo = server.credentials
            folder = pathlib.Path(tempfile.mkdtemp(prefix="cms-magic-demo-"))
            (folder / "credentials.ini").write_text(
                f"[{PROFILE}]\\n"
                "type = ram_role_arn\\n"
                f"access_key_id = {demo.access_key_id}\\n"
                f"access_key_secret = {demo.access_key_secret.reveal()}\\n"
                "role_arn = acs:ram::1234567890123456:role/cms-writer\\n"
                "role_session_name = notebook\\n",
                encoding="utf-8",
            )
            os.environ["ALIBABA_CLOUD_CREDENTIALS_FILE"] = str(folder / "credentials.ini")
            os.environ["CMS_MAGIC_STS_ENDPOINT"] = server.sts_url
            %config CmsMagic.endpoint = server.url
        %config CmsMagic.profile = PROFILE
        %cms whoami""",
    ),
    md(
        "send-md",
        """\
        ## 4. Send with the role's credentials

        Every request is signed with one whole set of temporary credentials; a long send
        gets fresh ones in the background before these expire.
        """,
    ),
    code(
        "send",
        """\
        import pandas as pd

        deploys = pd.DataFrame(
            {
                "service": ["checkout", "search", "payments"],
                "message": ["deployed v2.15.1", "deployed v8.0.3", "rolled back to v1.9.9"],
            }
        )""",
    ),
    code(
        "send-cell",
        """\
        %%cms_event --name deploy_event --content-template "{service}: {message}"
        deploys""",
    ),
    md(
        "read-md",
        """\
        ## 5. Read the events back

        `cms_magic.query_events` pages through `DescribeCustomEventAttribute` and returns
        a DataFrame (tz-aware times, integer group ids, the event id); `count_events`
        and `event_histogram` count them. The same target and profile as the send.
        """,
    ),
    code(
        "read",
        """\
        import cms_magic

        target = {"endpoint": server.url} if not USE_REAL_CLOUD else {"region": REGION}
        stored = cms_magic.query_events("deploy_event", since="1h", profile=PROFILE, **target)
        print(f"{len(stored)} deploy events in the last hour")
        stored[["time", "name", "group_id", "content"]]""",
    ),
    code(
        "count",
        """\
        cms_magic.count_events("deploy_event", since="1h", profile=PROFILE, **target)""",
    ),
)


NOTEBOOKS = {
    "01-quickstart.ipynb": QUICKSTART,
    "02-bulk-report.ipynb": BULK,
    "03-explore-regions.ipynb": REGIONS,
    "04-cell-output-events.ipynb": CELL_OUTPUT,
    "05-roles-and-read-back.ipynb": ROLES,
}


def render(nb: nbformat.NotebookNode) -> str:
    """The notebook as it is saved: nbformat's JSON (indent 1, sorted keys), one final newline."""
    nbformat.validate(nb)
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, nb in NOTEBOOKS.items():
        path = HERE / name
        text = render(nb)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(HERE.parent)}")
    if stale:
        print(
            f"stale: {', '.join(stale)}: notebooks/_build.py generates them; edit it, then run "
            "`python notebooks/_build.py`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
