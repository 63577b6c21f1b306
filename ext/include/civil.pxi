# Calendar arithmetic shared by the compiled decoders (included once per module that needs it):
# floor division whatever the C division semantics, and H. Hinnant's civil_from_days (any era).
cimport cython
from libc.stdint cimport int64_t


@cython.cdivision(True)
cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    """`a // b` rounded toward minus infinity (C division truncates toward zero)."""
    cdef int64_t q = a // b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


@cython.cdivision(True)
cdef inline void _civil_from_days(int64_t days, int64_t* year, int* month, int* day) noexcept nogil:
    """The proleptic Gregorian (year, month, day) of `days` since 1970-01-01."""
    cdef int64_t z = days + 719468
    cdef int64_t era = _floordiv(z, 146097)
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    day[0] = <int>(doy - (153 * mp + 2) // 5 + 1)
    month[0] = <int>(mp + 3 if mp < 10 else mp - 9)
    year[0] = yoe + era * 400 + (1 if month[0] <= 2 else 0)
