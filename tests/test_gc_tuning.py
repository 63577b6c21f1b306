"""cdc.gc_tuning: the young generation is collected less often; the older generations' thresholds stay."""

from __future__ import annotations

import gc

from cdc.gc_tuning import YOUNG_THRESHOLD, collect_less_often


def test_collect_less_often_raises_only_the_young_threshold():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        collect_less_often()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 11, 12)
        gc.set_threshold(YOUNG_THRESHOLD * 2, 11, 12)
        collect_less_often()  # never lowers a higher threshold
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD * 2
    finally:
        gc.set_threshold(*before)
