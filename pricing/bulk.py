"""Building many long-lived Python objects at once, with the cyclic garbage collector paused.

Loading a spec project (thousands of IR nodes, spans, source-map entries) and a run (its
calendar: an interval per contract period; its invoices: tens of thousands of lines) only
create objects that outlive the call and form no garbage cycles; Python's collector would still
walk all of them, and the project's, again and again as they pile up — a third of the time of
loading a 4,000-object spec, and the calendar of 50,000 contracts took 0.5–0.9 s instead of
0.5 s as it happened to run. Reference counting frees garbage as usual; the collector runs
again as soon as the call returns.

What the block made then goes straight to the collector's oldest generation (`gc.freeze()`
and `gc.unfreeze()`, which puts the frozen objects back there), as it would have gone had the
collector run: left in the youngest, all of it was walked by the next young collection, 0.94 s
of a run of 50,000 customers (0.01 s after), measured with `gc.callbacks`. An application that
keeps objects frozen itself (before a fork) has them left frozen: then nothing is moved.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the block; restore it after, also on an exception
    (a collector that was already off stays off), with what the block made in its oldest
    generation."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        if was_enabled:
            gc.enable()
