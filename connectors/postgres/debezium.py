"""What Debezium's PostgreSQL connector writes differently (compat mode, `cdc.compat`)."""

from __future__ import annotations

from cdc.compat import DebeziumProfile

DEBEZIUM = DebeziumProfile(
    default_precision=6,  # timestamp / time without a declared precision hold microseconds
    time_millis_up_to_precision_3=True,  # time.precision.mode=adaptive
    pad_bits=False,  # bit strings as few bytes as the value needs
    decimal_special_names=True,  # numeric NaN / ±Infinity
    geometry_struct=False,  # no spatial types without PostGIS: their text form
)
