"""What the panel shows as HTML: pure functions from data to escaped markup.

Nothing here touches a widget: each function takes what it shows (a result, a
target, an error, probe results) and returns the HTML string a ``w.HTML``
widget takes. Every value from outside is escaped with :func:`esc`; the one
style sheet, :data:`STYLE`, is scoped to ``.cms-panel``.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Final, Literal

from cms_magic.errors import NO_VALUE, AuthError, CmsError, show_value
from cms_magic.identity import describe_credentials
from cms_magic.regions import public_endpoint, regions
from cms_magic.ui.options import label_subject

if TYPE_CHECKING:
    import pandas as pd

    from cms_magic.identity import AnyCredentials
    from cms_magic.probe import ProbeResult
    from cms_magic.results import SendResult
    from cms_magic.targets import Target

__all__ = [
    "BRIEF_CHARS",
    "STYLE",
    "BarStyle",
    "Outcome",
    "bad",
    "brief",
    "catalog",
    "credentials_line",
    "credentials_missing",
    "details",
    "error",
    "esc",
    "events_preview",
    "failed_rows",
    "failure",
    "headline",
    "message",
    "muted",
    "outcome",
    "probe_table",
    "readable_requests",
    "requests_view",
    "result_style",
    "status_line",
    "subject",
    "summary",
    "table",
    "target_error",
    "target_line",
]

TABLE_ROWS: Final = 100
SHOWN_REASONS: Final = 5
#: The longest one-line error the panel shows before its details.
BRIEF_CHARS: Final = 160

STYLE: Final = """<style>
.cms-panel .cms-region-list select { font-family: monospace; font-size: 12px; }
.cms-panel pre.cms-json { max-height: 220px; overflow: auto; margin: 2px 0;
  background: var(--jp-layout-color2, #f5f5f5); padding: 4px 8px; font-size: 12px;
  white-space: pre-wrap; word-break: break-all; }
/* tables scroll inside their own box (both ways), the header row stays in view */
.cms-panel .cms-table { max-height: 260px; overflow: auto; max-width: 100%; }
.cms-panel .cms-table table { border-collapse: collapse; font-size: 12px; line-height: 1.4; }
.cms-panel .cms-table th, .cms-panel .cms-table td { padding: 2px 6px; text-align: left;
  vertical-align: top; white-space: nowrap; }
.cms-panel .cms-table thead th { position: sticky; top: 0;
  background: var(--jp-layout-color1, #fff); }
/* the reason (third cell: index, status, reason) wraps in the Events and Failed rows tabs */
.cms-panel .cms-events .cms-table tbody td:nth-child(3),
.cms-panel .cms-failed .cms-table tbody td:nth-child(3) { white-space: normal;
  min-width: 16em; max-width: 30em; }
/* the Events tab: the content (fifth cell: id, time, name, group_id, content) wraps */
.cms-panel .cms-read-table .cms-table tbody td:nth-child(5) { white-space: normal;
  min-width: 16em; max-width: 40em; }
.cms-panel .cms-read-chart svg { max-width: 100%; height: auto; }
.cms-panel .cms-table tr:nth-child(even) { background: var(--jp-layout-color2, #f5f5f5); }
.cms-panel .cms-muted { color: var(--jp-ui-font-color2, #616161); }
.cms-panel .cms-bad { color: #c62828; }
.cms-panel .cms-good { color: #2e7d32; }
.cms-panel .cms-warn { color: #a84b00; }
/* an outcome or error: one line, its details folded under a link-like summary */
.cms-panel details.cms-details { display: inline; margin-left: 6px; }
.cms-panel details.cms-details[open] { display: block; margin-left: 0; }
.cms-panel details.cms-details > summary { display: inline; cursor: pointer;
  color: var(--jp-content-link-color, #1565c0); }
.cms-panel details.cms-details > summary::-webkit-details-marker { display: none; }
.cms-panel .cms-details-text { font-size: 12px; max-height: 200px; overflow: auto;
  background: var(--jp-layout-color2, #f5f5f5); padding: 4px 8px; }
.cms-panel .cms-url .widget-html-content, .cms-panel .cms-credentials .widget-html-content,
.cms-panel .cms-counts .widget-html-content,
.cms-panel .cms-retry-note .widget-html-content { line-height: 1.45; padding: 4px 0; }
/* rows: fields shrink before a row overflows; toggle rows never wrap */
.cms-panel .widget-hbox > .widget-dropdown, .cms-panel .widget-hbox > .widget-text {
  flex: 0 1 auto; min-width: 0; }
.cms-panel .widget-hbox > .widget-dropdown > select,
.cms-panel .widget-hbox > .widget-text > input { min-width: 0; }
.cms-panel .widget-hbox > .cms-region { width: 400px; min-width: 270px; }
.cms-panel .widget-hbox > .cms-region > select { min-width: 150px; }
.cms-panel .widget-hbox > .widget-dropdown:not(.cms-region):not(.cms-frame):not(.cms-time-col) {
  min-width: 120px; }
.cms-panel .widget-toggle-buttons { flex: none; }
.cms-panel .widget-toggle-buttons > div { display: flex; flex-wrap: nowrap; }
.cms-panel .widget-toggle-buttons .widget-toggle-button { width: auto !important;
  min-width: 56px; padding: 0 10px; flex: none; margin-left: 1px; margin-right: 1px; }
/* rows of independent fields wrap instead of scrolling sideways */
.cms-panel .widget-hbox:has(> .cms-time-col), .cms-panel .widget-hbox:has(> .cms-send) {
  flex-wrap: wrap; row-gap: 2px; }
.cms-panel .widget-hbox > .cms-tz { width: 400px; }
/* buttons as wide as their text, never cut */
.cms-panel .jupyter-button:not(.widget-toggle-button) { width: auto; min-width: 84px;
  padding: 0 14px; flex: none; }
.cms-panel .widget-vbox > .jupyter-button { align-self: flex-start; }
.cms-panel .widget-hbox > .cms-progress { flex: 1 1 100px; max-width: 240px; min-width: 80px; }
.cms-panel .cms-status .widget-html-content { line-height: 1.3; }
/* the selected toggle: the brand colour, white text (WCAG AA against both) */
.cms-panel .jupyter-button.mod-active { background-color: var(--jp-brand-color1, #1976d2);
  color: #fff; box-shadow: none; font-weight: 600; }
/* disabled: grey, dim text, no pointer (not a faded live colour) */
.cms-panel .jupyter-button:disabled, .cms-panel .jupyter-button.mod-active:disabled {
  background-color: var(--jp-layout-color2, #eeeeee); color: var(--jp-ui-font-color3, #9e9e9e);
  opacity: 1; cursor: not-allowed; box-shadow: none;
  outline: 1px dashed var(--jp-border-color1, #bdbdbd); outline-offset: -1px; }
.cms-panel .jupyter-button.mod-active:disabled { background-color: var(--jp-layout-color3, #bdbdbd);
  color: var(--jp-ui-font-color1, #212121); }
</style>"""

#: The progress bar's style after a send (an ipywidgets ``bar_style``).
BarStyle = Literal["success", "warning", "danger", ""]
#: How a send ended (see :func:`outcome`).
Outcome = Literal["done", "dry_run", "partial", "stopped", "cancelled"]


def esc(value: object) -> str:
    """``value`` as text, HTML-escaped (quotes too)."""
    return escape(str(value))


def muted(text: str) -> str:
    return f'<span class="cms-muted">{esc(text)}</span>'


def bad(text: str) -> str:
    return f'<span class="cms-bad">{esc(text)}</span>'


def subject(name: str, value: object) -> str:
    """An error's subject in the panel's words: the control's label from the options table
    (:func:`~cms_magic.ui.options.label_subject`), or the credentials entry's field."""
    field = _ENTRY_LABELS.get(name)
    if field is None:
        return label_subject(name, value)
    if value is NO_VALUE or name != "access_key_id":  # a secret's value is never shown
        return field
    return f"{field} {show_value(value)}"


_ENTRY_LABELS: Final = {
    "access_key_id": "AccessKey id",
    "access_key_secret": "Secret",
    "security_token": "STS token",
}


def message(exc: BaseException) -> str:
    """An error in the panel's words: a :class:`CmsError` names the control's label."""
    if isinstance(exc, CmsError):
        return exc.describe(subject)
    return str(exc)


def brief(exc: BaseException) -> str:
    """An error as one readable line: refused credentials say so and what to do (the
    service's own words are for the details); else the message's first line, cut."""
    if isinstance(exc, AuthError) and exc.hint:
        return f"the service refused the credentials: {exc.hint}"
    text = message(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= BRIEF_CHARS else line[: BRIEF_CHARS - 1].rstrip() + "…"


def details(text: str, title: str = "details") -> str:
    """A folded disclosure holding ``text`` as written (wrapped, never a scroll)."""
    return (
        f'<details class="cms-details"><summary>{esc(title)}</summary>'
        f'<pre class="cms-details-text" style="white-space:pre-wrap;word-break:break-word;'
        f'margin:2px 0">{esc(text)}</pre></details>'
    )


# ----------------------------------------------------------------- errors, target, credentials


def error(exc: BaseException) -> str:
    """An error as one readable line, and "details" to expand when there is more: the
    whole message, and for a bug (not a :class:`CmsError`) its class and traceback.
    A user's error is said in the panel's words, without a Python class name."""
    line, full = brief(exc), message(exc)
    more = details(full) if full.strip() != line else ""
    head = ""
    if not isinstance(exc, CmsError):  # a bug: say what broke, and where
        head = f"<b>{esc(type(exc).__name__)}</b>: "
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        more += details("".join(lines), "traceback")
    return f'<div class="cms-bad cms-error-line">{head}{esc(line)}</div>{more}'


def failure(exc: BaseException, what: str = "not started") -> str:
    """The status next to Send when an action failed (``what``: ``not started``...): one
    line, details folded."""
    line, full = brief(exc), message(exc)
    more = details(full) if full.strip() != line else ""
    if not isinstance(exc, CmsError):
        more += details(
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), "traceback"
        )
    return f'<span class="cms-outcome cms-bad">✖ {esc(what)}: {esc(line)}</span>{more}'


def target_line(target: Target, url: str) -> str:
    """The target's label (with its URL when the label does not say it) and where events go."""
    label = f"<b>{esc(target.label)}</b>"
    if url not in target.label:
        label += f" <code>{esc(url)}</code>"
    return f"Target: {label} {muted(f'({target.where})')}"


def target_error(exc: CmsError) -> str:
    return f"Target: {bad(message(exc))}"


def credentials_line(credentials: AnyCredentials, note: str = "") -> str:
    """The masked key id and where it came from; never the secret. A refreshing source is
    not contacted to draw this: its key shows once a send (or whoami) fetched one."""
    report = describe_credentials(credentials, fetch=False)
    token = ", STS token" if report.security_token else ""
    extra = f" {muted(f'({note})')}" if note else ""
    key = (
        f"<code>{esc(report.access_key_id)}</code>{token} "
        if report.access_key_id is not None
        else ""
    )
    refreshed = ", refreshed ahead of expiry" if report.refreshing else ""
    return f"Credentials: {key}from {esc(report.source)}{refreshed}{extra}"


def credentials_missing(exc: CmsError, dropped: str = "") -> str:
    """Why no credentials resolved (where it looked, folded), what to do, and (``dropped``)
    that a key typed for another endpoint was cleared."""
    first, _, rest = message(exc).partition("\n")
    more = f"<details><summary>where I looked</summary><pre>{esc(rest)}</pre></details>"
    cleared = f" {muted(f'({dropped})')}" if dropped else ""
    return (
        f"Credentials: {bad(first)}{cleared}{more if rest else ''} "
        "Enter a key below (kept in memory only)."
    )


# ----------------------------------------------------------------- the data preview


def events_preview(payloads: Sequence[bytes]) -> str:
    """The first events as they will be sent (encoded JSON)."""
    shown = [p.decode("utf-8") for p in payloads]
    return (
        f"{muted(f'first {len(shown)} events, as sent:')}"
        f'<pre class="cms-json">{esc(chr(10).join(shown))}</pre>'
    )


# ----------------------------------------------------------------- results


def table(frame: pd.DataFrame, what: str, *, index: bool = True, limit: int = TABLE_ROWS) -> str:
    """A frame as an HTML table (first ``limit`` rows), escaped, in a scrolling box."""
    if frame.empty:
        return f'<div class="cms-muted">no {esc(what)}</div>'
    note = ""
    if len(frame) > limit:
        note = (
            f'<div class="cms-muted">first {limit:,} of {len(frame):,} {esc(what)}; '
            "all of them are in <code>panel.result</code></div>"
        )
    markup = frame.head(limit).to_html(border=0, na_rep="", escape=True, index=index)
    return f'{note}<div class="cms-table">{markup}</div>'


def readable_requests(result: SendResult) -> pd.DataFrame:
    """The requests table for reading: latency rounded, send time to the millisecond."""
    frame = result.requests
    if frame.empty:
        return frame
    frame["latency_ms"] = frame["latency_ms"].round(1)
    frame["sent_at"] = frame["sent_at"].dt.strftime("%H:%M:%S.%f").str[:-3]
    renamed: pd.DataFrame = frame.rename(columns={"sent_at": "sent_at_utc"})
    return renamed


def failed_rows(result: SendResult) -> pd.DataFrame:
    """The failed source rows with their status and reason first (else the failed events)."""
    import pandas as pd

    events: pd.DataFrame = result.failed_events()
    source = result.failed()
    if not isinstance(source, pd.DataFrame) or len(source) != len(events):
        return events
    rows: pd.DataFrame = source.copy()
    rows.insert(0, "cms_reason", events["reason"].to_numpy())
    rows.insert(0, "cms_status", events["status"].astype(str).to_numpy())
    return rows


def requests_view(result: SendResult) -> str:
    """The Requests tab: the dry run's first request (Authorization masked), or the table."""
    if result.preview is None:
        return table(readable_requests(result), "requests", index=False)
    preview = json.dumps(result.preview, indent=2, ensure_ascii=False)
    return (
        muted("dry run: no request was sent; the first would be (Authorization masked):")
        + f'<pre class="cms-json">{esc(preview)}</pre>'
    )


def outcome(result: SendResult) -> Outcome:
    """How a send ended: ``stopped`` (an error stopped it), ``cancelled``, ``dry_run``,
    ``done`` (every row accepted) or ``partial`` (some rows not accepted)."""
    if result.error is not None:
        return "stopped"
    if result.cancelled:
        return "cancelled"
    if len(result) and result.counts()["dry_run"] == len(result):
        return "dry_run"
    return "done" if result.ok else "partial"


_STYLES: Final[dict[str, BarStyle]] = {
    "done": "success",
    "dry_run": "success",
    "partial": "warning",
    "stopped": "danger",
    "cancelled": "",  # asked for: not a failure
}
_ICONS: Final = {"done": "✔", "dry_run": "✔", "partial": "⚠", "stopped": "✖", "cancelled": "■"}
_CLASSES: Final = {
    "done": "cms-good",
    "dry_run": "cms-good",
    "partial": "cms-warn",
    "stopped": "cms-bad",
    "cancelled": "cms-muted",
}


def result_style(result: SendResult) -> BarStyle:
    """Green when every row was accepted (or a dry run), red when an error stopped the
    send, orange when rows were not accepted, neutral when it was cancelled."""
    return _STYLES[outcome(result)]


def headline(result: SendResult, name: str = "panel.result") -> str:
    """:meth:`SendResult.summary` without the words of the error that stopped the send
    (the status next to Send says it in one line, with details)."""
    line = result.summary(name)
    if result.error is not None:
        line = line.replace(f"; stopped: {result.error}", "; stopped")
    return line


def status_line(result: SendResult) -> str:
    """The outcome next to Send: one line (an icon, what happened), and for a send that an
    error stopped, that error's details folded."""
    kind = outcome(result)
    counts, total = result.counts(), len(result)
    accepted = f"{counts['accepted']:,}/{total:,} accepted"
    if kind == "dry_run":
        text = f"dry run: {total:,} events would be sent"
    elif kind == "done":
        text = f"done: {accepted} in {result.elapsed:.1f} s"
    elif kind == "cancelled":
        left = [
            f"{counts[s]:,} {s.replace('_', ' ')}" for s in ("not_sent", "unknown") if counts[s]
        ]
        text = "cancelled: " + ", ".join([accepted, *left])
    elif kind == "partial":
        text = f"{accepted}; the others are in Failed rows"
    else:
        text = f"stopped: {brief(result.error)}" if result.error is not None else "stopped"
    more = details(message(result.error)) if result.error is not None else ""
    return f'<span class="cms-outcome {_CLASSES[kind]}">{_ICONS[kind]} {esc(text)}</span>{more}'


def summary(result: SendResult, where: str) -> str:
    """The result's one summary line (:func:`headline`) and where it went."""
    kind = outcome(result)
    line = headline(result)
    return (
        f'<span class="{_CLASSES[kind]}"><b>{_ICONS[kind]} {esc(line)}</b></span> '
        f"{muted(f'({where})')}"
    )


# ----------------------------------------------------------------- the Regions tab


def catalog() -> str:
    """Every region with its id, name and internal endpoint, and the public endpoint."""
    rows = "".join(
        f"<tr><td><code>{esc(r.id)}</code></td><td>{esc(r.name)}</td>"
        f"<td><code>{esc(r.internal_endpoint)}</code></td></tr>"
        for r in regions()
    )
    table = (
        '<div class="cms-table" style="max-height:none"><table><thead><tr><th>id</th>'
        "<th>name</th><th>internal endpoint (reachable from inside the region)</th></tr>"
        f"</thead><tbody>{rows}</tbody></table></div>"
    )
    return (
        f"Public endpoint, the same for every region: <code>{esc(public_endpoint())}</code>"
        f'<details class="cms-details"><summary>the catalog: {len(regions())} regions and '
        f"their internal endpoints</summary>{table}</details>"
    )


def probe_table(results: Sequence[ProbeResult]) -> str:
    """The probe's results: latency with a bar scaled to the slowest, status, URL."""
    slowest = max((r.latency_ms or 0.0 for r in results), default=0.0) or 1.0
    rows = []
    for r in results:
        if r.reachable and r.latency_ms is not None:
            width = max(1.0, 100 * r.latency_ms / slowest)
            bar = (
                f'<div style="background:#1565c0;height:10px;width:{width:.0f}%;'
                'min-width:2px"></div>'
            )
            status = f'<span class="cms-good">reachable</span> ({esc(r.address)})'
            latency = f"{r.latency_ms:.1f} ms"
        else:
            bar = ""
            status = f'<span class="cms-bad">unreachable</span>: {esc(r.reason)}'
            latency = ""
        rows.append(
            f"<tr><td><code>{esc(r.label)}</code></td>"
            f"<td style='text-align:right'>{latency}</td>"
            f"<td style='width:160px;min-width:160px'>{bar}</td>"
            f"<td>{status}</td><td><code>{esc(r.url)}</code></td></tr>"
        )
    return (
        '<details class="cms-details"><summary>probe details: addresses and URLs</summary>'
        '<div class="cms-table" style="max-height:none"><table><thead><tr><th>target</th>'
        "<th>latency</th><th></th><th>status</th><th>url</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></details>"
    )
