"""Engine-neutral value codecs: source values to the readable JSON forms of docs/event-format.md.

Pure Python, with no compiled twin: the compiled decoders write the common forms themselves (see
ext/connectors/*/decode.pyx) and call their Python twins for the rest. Malformed text raises
ValueError, whatever its length.

Calendar forms: years 1..9999 print as four digits; other years use ISO 8601 astronomical numbering
as java.time does (`0000` = 1 BC, `-0043` = 44 BC, `+10000`). Fractional seconds print as six
digits when non-zero and not at all otherwise. PostgreSQL's infinite values stay the strings
`"infinity"` / `"-infinity"`.
"""

from __future__ import annotations

import binascii
import struct
from datetime import date, datetime, timedelta
from decimal import Decimal

__all__ = [
    "encode_bytes",
    "encode_float",
    "encode_float4",
    "encode_decimal",
    "encode_date",
    "encode_date_ymd",
    "encode_time",
    "encode_timestamp",
    "encode_timestamp_parts",
    "encode_timestamptz",
    "encode_interval",
    "encode_bits",
    "encode_bits_bytes",
    "encode_bits_int",
    "pg_date_text_to_iso",
    "pg_time_text_to_iso",
    "pg_timetz_text_to_iso",
    "pg_timestamp_text_to_iso",
    "pg_timestamptz_text_to_iso",
    "pg_bytea_hex_to_base64",
    "days_from_civil",
    "civil_from_days",
]

USECS_PER_SEC = 1_000_000
USECS_PER_MINUTE = 60 * USECS_PER_SEC
USECS_PER_HOUR = 60 * USECS_PER_MINUTE
USECS_PER_DAY = 24 * USECS_PER_HOUR

# PostgreSQL's on-disk sentinels for infinite dates/timestamps/intervals (passed through unshifted).
DATE_INFINITY = 2**31 - 1
DATE_MINUS_INFINITY = -(2**31)
TIMESTAMP_INFINITY = 2**63 - 1
TIMESTAMP_MINUS_INFINITY = -(2**63)

_F32 = struct.Struct("<f")
_U32 = struct.Struct("<I")
_INF = float("inf")
_MINUS_INF = float("-inf")
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()
_MIN_FAST_DAYS = 1 - _EPOCH_ORDINAL  # 0001-01-01
_MAX_FAST_DAYS = 2_932_896  # 9999-12-31
_EPOCH = datetime(1970, 1, 1)
_MIN_FAST_MICROS = _MIN_FAST_DAYS * USECS_PER_DAY
_MAX_FAST_MICROS = (_MAX_FAST_DAYS + 1) * USECS_PER_DAY - 1


# --- calendar arithmetic (proleptic Gregorian, astronomical years; H. Hinnant's algorithms) ---


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of an astronomical (year 0 = 1 BC) proleptic Gregorian date."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01; year is astronomical (0 = 1 BC)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _format_year(year: int) -> str:
    if 0 <= year <= 9999:
        return f"{year:04d}"
    if year > 9999:
        return f"+{year}"
    return f"-{-year:04d}"


def _format_clock(micros_of_day: int) -> str:
    seconds, fraction = divmod(micros_of_day, USECS_PER_SEC)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    if fraction:
        return f"{hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}"
    return f"{hour:02d}:{minute:02d}:{second:02d}"


# --- plain values ---


def encode_bytes(data: bytes | bytearray | memoryview) -> str:
    """Base64 (standard alphabet, padded) of binary data."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def encode_float(value: float) -> float | str:
    """A double as a JSON number; NaN and infinities as "NaN", "Infinity", "-Infinity"."""
    if value != value:
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == _MINUS_INF:
        return "-Infinity"
    return value


def encode_float4(value: float) -> float | str:
    """A single-precision float (read as a double) as the shortest number that reads back equal.

    A candidate lying exactly halfway to a neighbouring float32 is refused (it reads back equal only by
    round-half-even): PostgreSQL's float4 output refuses it too, so binary and text decoding agree.
    """
    if value != value or value in (_INF, _MINUS_INF):
        return encode_float(value)
    target = _F32.unpack(_F32.pack(value))[0]
    halfway = _float32_midpoints(target)
    for digits in range(1, 10):
        candidate = float(f"{target:.{digits}g}")
        try:
            if _F32.unpack(_F32.pack(candidate))[0] == target and candidate not in halfway:
                return candidate
        except OverflowError:  # rounded past the largest float32
            continue
    return target


def _float32_midpoints(target: float) -> tuple[float, ...]:
    """The doubles exactly halfway between a finite float32 and its finite neighbours (exact in a double)."""
    bits = _U32.unpack(_F32.pack(target))[0]
    finite = [b for b in (bits - 1, bits + 1) if 0 <= b < 0x7F800000 or 0x80000000 <= b < 0xFF800000]
    return tuple((target + _F32.unpack(_U32.pack(b))[0]) / 2 for b in finite)


def encode_decimal(value: str | Decimal | int) -> str:
    """An exact decimal string with its scale kept ("10.50"); "NaN", "Infinity", "-Infinity"."""
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "-Infinity" if value.is_signed() else "Infinity"
    return format(value, "f")


def encode_date(days: int) -> str:
    """A date given as days since 1970-01-01: "2024-02-29" (PG's sentinels: "infinity")."""
    if _MIN_FAST_DAYS <= days <= _MAX_FAST_DAYS:
        return date.fromordinal(days + _EPOCH_ORDINAL).isoformat()
    if days == DATE_INFINITY:
        return "infinity"
    if days == DATE_MINUS_INFINITY:
        return "-infinity"
    year, month, day = civil_from_days(days)
    return f"{_format_year(year)}-{month:02d}-{day:02d}"


def encode_date_ymd(year: int, month: int, day: int) -> str | None:
    """A date from its fields as stored (MySQL); the zero date 0000-00-00 is None."""
    if year == 0 and month == 0 and day == 0:
        return None
    return f"{_format_year(year)}-{month:02d}-{day:02d}"


def encode_time(micros: int) -> str:
    """A time of day or MySQL duration in microseconds: "13:45:00.123456", "-838:59:59", "24:00:00"."""
    if micros < 0:
        return "-" + _format_clock(-micros)
    return _format_clock(micros)


def encode_timestamp(epoch_micros: int) -> str:
    """A timestamp without zone in microseconds since 1970-01-01: "2024-02-29T13:45:00.123456"."""
    if _MIN_FAST_MICROS <= epoch_micros <= _MAX_FAST_MICROS:
        return (_EPOCH + timedelta(microseconds=epoch_micros)).isoformat()
    if epoch_micros == TIMESTAMP_INFINITY:
        return "infinity"
    if epoch_micros == TIMESTAMP_MINUS_INFINITY:
        return "-infinity"
    days, micros_of_day = divmod(epoch_micros, USECS_PER_DAY)
    year, month, day = civil_from_days(days)
    return f"{_format_year(year)}-{month:02d}-{day:02d}T{_format_clock(micros_of_day)}"


def encode_timestamp_parts(
    year: int, month: int, day: int, hour: int, minute: int, second: int, micros: int = 0
) -> str | None:
    """A timestamp from its fields as stored (MySQL DATETIME); the zero date is None."""
    if year == 0 and month == 0 and day == 0:
        return None
    clock = _format_clock(((hour * 60 + minute) * 60 + second) * USECS_PER_SEC + micros)
    return f"{_format_year(year)}-{month:02d}-{day:02d}T{clock}"


def encode_timestamptz(epoch_micros: int) -> str:
    """An instant in microseconds since the epoch, in UTC: "2024-02-29T12:45:00.123456Z"."""
    if epoch_micros == TIMESTAMP_INFINITY:
        return "infinity"
    if epoch_micros == TIMESTAMP_MINUS_INFINITY:
        return "-infinity"
    return encode_timestamp(epoch_micros) + "Z"


_INTERVAL_INFINITY = (2**31 - 1, 2**31 - 1, 2**63 - 1)
_INTERVAL_MINUS_INFINITY = (-(2**31), -(2**31), -(2**63))


def encode_interval(months: int, days: int, micros: int) -> str:
    """An interval as PostgreSQL prints it with IntervalStyle iso_8601: "P1Y2M3DT4H5M6.7S", "PT0S".

    Each field keeps its own sign, as PG keeps them: "P-1Y-2M3DT-4H-5M-6.7S".
    """
    if months == 0 and days == 0 and micros == 0:
        return "PT0S"
    if (months, days, micros) == _INTERVAL_INFINITY:
        return "infinity"
    if (months, days, micros) == _INTERVAL_MINUS_INFINITY:
        return "-infinity"
    parts = ["P"]
    if months:
        sign = -1 if months < 0 else 1
        years, month = divmod(months * sign, 12)
        if years:
            parts.append(f"{years * sign}Y")
        if month:
            parts.append(f"{month * sign}M")
    if days:
        parts.append(f"{days}D")
    if micros:
        negative = micros < 0
        sign = -1 if negative else 1
        hours, rest = divmod(micros * sign, USECS_PER_HOUR)
        minutes, rest = divmod(rest, USECS_PER_MINUTE)
        seconds, fraction = divmod(rest, USECS_PER_SEC)
        parts.append("T")
        if hours:
            parts.append(f"{hours * sign}H")
        if minutes:
            parts.append(f"{minutes * sign}M")
        if seconds or fraction:
            parts.append("-" if negative else "")
            parts.append(str(seconds))
            if fraction:
                parts.append("." + f"{fraction:06d}".rstrip("0"))
            parts.append("S")
    return "".join(parts)


def encode_bits(bits: str) -> str:
    """A bit string already in text form ("0101", PG bit/varbit): returned as is."""
    return bits


def encode_bits_bytes(data: bytes, length: int) -> str:
    """MySQL BIT(n) bytes (big-endian) as n characters of "0"/"1"."""
    return format(int.from_bytes(data, "big"), f"0{length}b")[-length:] if length else ""


def encode_bits_int(value: int, length: int) -> str:
    """A bit field held as an unsigned integer as `length` characters of "0"/"1"."""
    return format(value, f"0{length}b")[-length:] if length else ""


# --- PostgreSQL text output (DateStyle ISO, TimeZone UTC, bytea_output hex) to readable forms ---


def _pg_date(text: str, before_christ: bool) -> str:
    year_text, month_text, day_text = text.split("-")
    year = int(year_text)
    if before_christ:
        year = 1 - year
    return f"{_format_year(year)}-{month_text}-{day_text}"


def _pg_clock(text: str) -> str:
    dot = text.find(".")
    if dot < 0:
        return text
    fraction = text[dot + 1 :]
    return text[: dot + 1] + fraction + "0" * (6 - len(fraction))


def _pg_split_offset(text: str) -> tuple[str, int]:
    """("13:45:00.12", offset seconds) from a time with PG's "+02", "-03:30", "+00:53:28" suffix."""
    cut = max(text.rfind("+"), text.rfind("-"))
    sign = -1 if text[cut] == "-" else 1
    seconds = 0
    for scale, part in zip((3600, 60, 1), text[cut + 1 :].split(":")):
        seconds += scale * int(part)
    return text[:cut], sign * seconds


def _clock_micros(text: str) -> int:
    hour_text, minute_text, second_text = text.split(":")
    seconds, _, fraction = second_text.partition(".")
    micros = int((fraction + "000000")[:6]) if fraction else 0
    return ((int(hour_text) * 60 + int(minute_text)) * 60 + int(seconds)) * USECS_PER_SEC + micros


def pg_date_text_to_iso(text: str) -> str:
    """PG date text ("2024-02-29", "0044-03-15 BC", "infinity") to the readable form."""
    if len(text) == 10:
        return text
    if text.endswith(" BC"):
        return _pg_date(text[:-3], True)
    if text[-1] == "y":
        return text
    return _pg_date(text, False)


def pg_time_text_to_iso(text: str) -> str:
    """PG time text ("13:45:00.12") to the readable form ("13:45:00.120000")."""
    return _pg_clock(text)


def pg_timetz_text_to_iso(text: str) -> str:
    """PG timetz text ("13:45:00.12+02") to UTC with "Z" ("11:45:00.120000Z"), as Debezium does."""
    clock, offset = _pg_split_offset(text)
    micros = (_clock_micros(clock) - offset * USECS_PER_SEC) % USECS_PER_DAY
    return _format_clock(micros) + "Z"


def pg_timestamp_text_to_iso(text: str) -> str:
    """PG timestamp text ("2024-02-29 13:45:00.12") to "2024-02-29T13:45:00.120000"."""
    size = len(text)
    if (size == 19 or size == 26) and text[4] == "-" and text[-1] != "C":
        return text[:10] + "T" + text[11:]
    if text[-1] == "y":
        return text
    before_christ = text.endswith(" BC")
    if before_christ:
        text = text[:-3]
    day_text, _, clock = text.partition(" ")
    return _pg_date(day_text, before_christ) + "T" + _pg_clock(clock)


def pg_timestamptz_text_to_iso(text: str) -> str:
    """PG timestamptz text ("2024-02-29 12:45:00.123456+00") to UTC "2024-02-29T12:45:00.123456Z"."""
    size = len(text)
    if (size == 22 or size == 29) and text[4] == "-" and text[-3:] == "+00":
        return text[:10] + "T" + text[11:-3] + "Z"
    if text[-1] == "y":
        return text
    before_christ = text.endswith(" BC")
    if before_christ:
        text = text[:-3]
    day_text, _, clock = text.partition(" ")
    clock, offset = _pg_split_offset(clock)
    if offset == 0:
        return _pg_date(day_text, before_christ) + "T" + _pg_clock(clock) + "Z"
    year_text, month_text, day_of_month = day_text.split("-")
    year = 1 - int(year_text) if before_christ else int(year_text)
    days = days_from_civil(year, int(month_text), int(day_of_month))
    micros = days * USECS_PER_DAY + _clock_micros(clock) - offset * USECS_PER_SEC
    return encode_timestamptz(micros)


def pg_bytea_hex_to_base64(text: str) -> str:
    """PG bytea text ("\\x0102", or the old escape format) to base64 ("AQI=")."""
    if text.startswith("\\x"):
        return binascii.b2a_base64(bytes.fromhex(text[2:]), newline=False).decode("ascii")
    return encode_bytes(_pg_bytea_unescape(text))


def _pg_bytea_unescape(text: str) -> bytes:
    out = bytearray()
    index, size = 0, len(text)
    while index < size:
        char = text[index]
        if char != "\\":
            out += char.encode("latin-1")
            index += 1
        elif text[index + 1] == "\\":
            out.append(0x5C)
            index += 2
        else:
            out.append(int(text[index + 1 : index + 4], 8))
            index += 4
    return bytes(out)
