# Standard padded base64 shared by the compiled decoders (included once per module that needs it).

cdef extern from "Python.h":
    object PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    void* PyUnicode_DATA(object o)

cdef const char* _B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


cdef object _base64(const unsigned char* src, Py_ssize_t n):
    """`n` bytes at `src` as padded base64 str (what binascii.b2a_base64(newline=False) gives)."""
    cdef Py_ssize_t out_len = ((n + 2) // 3) * 4
    cdef object text = PyUnicode_New(out_len, 127)
    cdef unsigned char* out = <unsigned char*>PyUnicode_DATA(text)
    cdef Py_ssize_t i = 0, o = 0
    cdef unsigned int v
    while i + 2 < n:
        v = (src[i] << 16) | (src[i + 1] << 8) | src[i + 2]
        out[o] = _B64[(v >> 18) & 63]
        out[o + 1] = _B64[(v >> 12) & 63]
        out[o + 2] = _B64[(v >> 6) & 63]
        out[o + 3] = _B64[v & 63]
        i += 3
        o += 4
    if n - i == 1:
        v = src[i] << 16
        out[o] = _B64[(v >> 18) & 63]
        out[o + 1] = _B64[(v >> 12) & 63]
        out[o + 2] = 61
        out[o + 3] = 61
    elif n - i == 2:
        v = (src[i] << 16) | (src[i + 1] << 8)
        out[o] = _B64[(v >> 18) & 63]
        out[o + 1] = _B64[(v >> 12) & 63]
        out[o + 2] = _B64[(v >> 6) & 63]
        out[o + 3] = 61
    return text
