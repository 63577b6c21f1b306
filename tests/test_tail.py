"""`cdc tail` prints the change events of a prefix from Kafka."""

import subprocess
import sys
import uuid

import orjson

from cdc.commands.tail import format_record
from cdc.kafka import Record, make_admin, make_producer


def test_format_record_summary_and_tombstone():
    record = Record("p.public.t", 0, 7, b'{"id":1}', orjson.dumps({"op": "c"}), (), 0)
    assert format_record(record, summary=True) == 'p.public.t[0]@7 op=c key={"id":1}'
    tombstone = Record("p.public.t", 0, 8, b'{"id":1}', None, (), 0)
    assert "null (tombstone)" in format_record(tombstone, summary=False)


def test_tail_prints_events_of_the_prefix_from_the_beginning(kafka_bootstrap):
    prefix = f"tail_{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}.public.orders"
    make_admin(kafka_bootstrap).ensure_topic(topic, 1)
    producer = make_producer(kafka_bootstrap)
    for number in range(3):
        producer.produce(topic, orjson.dumps({"op": "c", "after": {"id": number}}), orjson.dumps({"id": number}))
    producer.flush(30)
    result = subprocess.run(
        [sys.executable, "-m", "cdc.cli", "tail", "--kafka", kafka_bootstrap, "--prefix", prefix,
         "--from-beginning", "--summary", "--max-events", "3"],
        capture_output=True, text=True, timeout=90,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f'{topic}[0]@{n} op=c key={{"id":{n}}}' for n in range(3)]
