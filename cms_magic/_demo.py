"""``make demo``: report the bundled sample DataFrame to the embedded emulator.

Starts the local, signature-verifying emulator on 127.0.0.1 (with its demo
credentials), sends the 1,200-row sample (Chinese text, emoji, tz-aware times)
through the public Python API, prints the summary and the first rows of the
result, and checks the emulator holds exactly the accepted events. Nothing
leaves this machine.
"""

from __future__ import annotations

import sys

import cms_magic
from cms_magic import emulator
from cms_magic.samples import sample_frame


def main() -> int:
    import pandas as pd

    frame = sample_frame()
    with emulator.serve() as emu:
        print(f"emulator: {emu.url} (local, demo credentials {emu.credentials.masked_id})")
        print(f"sample: {len(frame):,} rows, columns {', '.join(frame.columns)}")
        result = cms_magic.send(
            frame,
            endpoint=emu.url,
            credentials=emu.credentials,
            name="incident",
            content_template="[{severity}] {service}@{host}: {message}",
            group_id_col="group_id",
            time_col="time",
            progress=False,
        )
        stored = emu.events()
    print()
    print(result.summary())
    with pd.option_context("display.width", 120, "display.max_colwidth", 40):
        print(result.events.head(5).to_string())
        print()
        print(result.requests.head(3).to_string())
    print()
    print(f"the emulator holds {len(stored):,} events; first: {stored[0]}")
    if len(stored) != result.accepted or not result.ok:
        print(
            "demo FAILED: the emulator does not hold exactly the accepted events", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
