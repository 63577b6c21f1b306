"""PositionTracker: a checkpoint is acknowledged only once every record produced before it is."""

from hypothesis import given
from hypothesis import strategies as st

from cdc.positions import PositionTracker


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=40), st.randoms())
def test_acknowledged_is_the_last_checkpoint_whose_records_are_all_delivered(per_transaction, rng):
    tracker = PositionTracker()
    checkpoints = []  # (records produced before it, position)
    tickets = []
    for position, count in enumerate(per_transaction):
        tickets += [tracker.produced() for _ in range(count)]
        tracker.checkpoint(position)
        checkpoints.append((len(tickets), position))
    order = list(tickets)
    rng.shuffle(order)
    delivered = set()
    for ticket in order:
        tracker.delivered(ticket)
        delivered.add(ticket)
        prefix = 0
        while prefix in delivered:
            prefix += 1
        allowed = [position for produced, position in checkpoints if produced <= prefix]
        assert tracker.acknowledged == (allowed[-1] if allowed else None)
    assert tracker.idle and tracker.acknowledged == checkpoints[-1][1]


def test_a_failed_delivery_blocks_every_later_checkpoint():
    tracker = PositionTracker(acknowledged="start")
    first, second = tracker.produced(), tracker.produced()
    tracker.checkpoint("after-two")
    tracker.acknowledge(first, RuntimeError("broker said no"))
    tracker.acknowledge(second, None)
    assert tracker.acknowledged == "start" and isinstance(tracker.failed, RuntimeError)


def test_stamp_of_a_checkpoint_follows_its_position_into_acknowledged():
    tracker = PositionTracker()
    tracker.checkpoint(5, stamp=1000)
    assert (tracker.acknowledged, tracker.acknowledged_stamp) == (5, 1000)  # nothing in flight: at once
    first = tracker.produced()
    tracker.checkpoint(10, stamp=2000)
    second = tracker.produced()
    tracker.checkpoint(20, stamp=3000)
    assert (tracker.acknowledged, tracker.acknowledged_stamp) == (5, 1000)
    tracker.delivered(first)
    assert (tracker.acknowledged, tracker.acknowledged_stamp) == (10, 2000)
    tracker.delivered(second)
    assert (tracker.acknowledged, tracker.acknowledged_stamp) == (20, 3000)
