"""MySQL/MariaDB character sets: collation id -> charset, charset -> Python codec, bytes per character.

MySQL's latin1 is Windows-1252 with five holes kept as C1 controls: importing this module registers
that codec as `mysql_latin1`.
"""

from __future__ import annotations

import codecs

from cdc.errors import UnsupportedError

BINARY_COLLATION = 63

# Charset name -> Python codec. MySQL's latin1 is Windows-1252; utf8 (utf8mb3) is a subset of UTF-8.
CHARSET_CODECS = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "latin1": "mysql_latin1",
    "ascii": "ascii",
    "latin2": "iso8859-2",
    "latin5": "iso8859-9",
    "latin7": "iso8859-13",
    "cp1250": "cp1250",
    "cp1251": "cp1251",
    "cp1256": "cp1256",
    "cp1257": "cp1257",
    "cp850": "cp850",
    "cp852": "cp852",
    "cp866": "cp866",
    "koi8r": "koi8-r",
    "koi8u": "koi8-u",
    "greek": "iso8859-7",
    "hebrew": "iso8859-8",
    "ucs2": "utf-16-be",
    "utf16": "utf-16-be",
    "utf16le": "utf-16-le",
    "utf32": "utf-32-be",
    "sjis": "shift_jis",
    "cp932": "cp932",
    "ujis": "euc_jp",
    "eucjpms": "euc_jp",
    "euckr": "euc_kr",
    "gbk": "gbk",
    "gb2312": "gb2312",
    "gb18030": "gb18030",
    "big5": "big5",
    "tis620": "tis-620",
    "macroman": "mac_roman",
    "macce": "mac_latin2",
    "binary": "binary",
}

def _mysql_latin1_search(name: str):
    """MySQL's latin1 is Windows-1252 with its five holes (0x81, 0x8D, 0x8F, 0x90, 0x9D) kept as C1 controls."""
    if name != "mysql_latin1":
        return None
    table = "".join(
        bytes([byte]).decode("cp1252", errors="strict") if byte not in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else chr(byte)
        for byte in range(256)
    )
    encoding_table = codecs.charmap_build(table)

    def decode(data, errors="strict"):
        return codecs.charmap_decode(data, errors, table)

    def encode(text, errors="strict"):
        return codecs.charmap_encode(text, errors, encoding_table)

    return codecs.CodecInfo(encode, decode, name="mysql_latin1")


codecs.register(_mysql_latin1_search)


# Collation id -> charset, as MariaDB 10.11's information_schema.COLLATIONS lists them (MySQL 8's
# utf8mb4_0900 ids 255-323 added). The source passes the server's own table, which wins.
_COLLATION_RANGES = {
    "armscii8": [(32, 32), (64, 64), (1056, 1056), (1088, 1088)],
    "ascii": [(11, 11), (65, 65), (1035, 1035), (1089, 1089)],
    "big5": [(1, 1), (84, 84), (1025, 1025), (1108, 1108)],
    "binary": [(63, 63)],
    "cp1250": [(26, 26), (34, 34), (44, 44), (66, 66), (99, 99), (1050, 1050), (1090, 1090)],
    "cp1251": [(14, 14), (23, 23), (50, 52), (1074, 1075)],
    "cp1256": [(57, 57), (67, 67), (1081, 1081), (1091, 1091)],
    "cp1257": [(29, 29), (58, 59), (1082, 1083)],
    "cp850": [(4, 4), (80, 80), (1028, 1028), (1104, 1104)],
    "cp852": [(40, 40), (81, 81), (1064, 1064), (1105, 1105)],
    "cp866": [(36, 36), (68, 68), (1060, 1060), (1092, 1092)],
    "cp932": [(95, 96), (1119, 1120)],
    "dec8": [(3, 3), (69, 69), (1027, 1027), (1093, 1093)],
    "eucjpms": [(97, 98), (1121, 1122)],
    "euckr": [(19, 19), (85, 85), (1043, 1043), (1109, 1109)],
    "gb2312": [(24, 24), (86, 86), (1048, 1048), (1110, 1110)],
    "gbk": [(28, 28), (87, 87), (1052, 1052), (1111, 1111)],
    "geostd8": [(92, 93), (1116, 1117)],
    "greek": [(25, 25), (70, 70), (1049, 1049), (1094, 1094)],
    "hebrew": [(16, 16), (71, 71), (1040, 1040), (1095, 1095)],
    "hp8": [(6, 6), (72, 72), (1030, 1030), (1096, 1096)],
    "keybcs2": [(37, 37), (73, 73), (1061, 1061), (1097, 1097)],
    "koi8r": [(7, 7), (74, 74), (1031, 1031), (1098, 1098)],
    "koi8u": [(22, 22), (75, 75), (1046, 1046), (1099, 1099)],
    "latin1": [(5, 5), (8, 8), (15, 15), (31, 31), (47, 49), (94, 94), (1032, 1032), (1071, 1071)],
    "latin2": [(2, 2), (9, 9), (21, 21), (27, 27), (77, 77), (1033, 1033), (1101, 1101)],
    "latin5": [(30, 30), (78, 78), (1054, 1054), (1102, 1102)],
    "latin7": [(20, 20), (41, 42), (79, 79), (1065, 1065), (1103, 1103)],
    "macce": [(38, 38), (43, 43), (1062, 1062), (1067, 1067)],
    "macroman": [(39, 39), (53, 53), (1063, 1063), (1077, 1077)],
    "sjis": [(13, 13), (88, 88), (1037, 1037), (1112, 1112)],
    "swe7": [(10, 10), (82, 82), (1034, 1034), (1106, 1106)],
    "tis620": [(18, 18), (89, 89), (1042, 1042), (1113, 1113)],
    "ucs2": [(35, 35), (90, 90), (128, 151), (159, 159), (640, 642), (1059, 1059), (1114, 1114), (1152, 1152), (1174, 1174)],
    "ujis": [(12, 12), (91, 91), (1036, 1036), (1115, 1115)],
    "utf16": [(54, 55), (101, 124), (672, 674), (1078, 1079), (1125, 1125), (1147, 1147)],
    "utf16le": [(56, 56), (62, 62), (1080, 1080), (1086, 1086)],
    "utf32": [(60, 61), (160, 183), (736, 738), (1084, 1085), (1184, 1184), (1206, 1206)],
    "utf8mb3": [(33, 33), (83, 83), (192, 215), (223, 223), (576, 578), (1057, 1057), (1107, 1107), (1216, 1216), (1238, 1238)],
    "utf8mb4": [(45, 46), (224, 247), (255, 323), (608, 610), (1069, 1070), (1248, 1248), (1270, 1270)],
}


def _collation_charsets() -> dict[int, str]:
    return {
        collation: charset
        for charset, spans in _COLLATION_RANGES.items()
        for first, last in spans
        for collation in range(first, last + 1)
    }


_COLLATIONS: dict[int, str] | None = None


def collation_charset(collation_id: int, server_collations: dict[int, str] | None = None) -> str:
    """The charset name of a collation id; the server's own table (information_schema) wins."""
    global _COLLATIONS
    if server_collations and collation_id in server_collations:
        return server_collations[collation_id]
    if _COLLATIONS is None:
        _COLLATIONS = _collation_charsets()
    try:
        return _COLLATIONS[collation_id]
    except KeyError:
        raise UnsupportedError(
            f"collation id {collation_id} is unknown",
            fix="pass the server's collations (SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS)",
        ) from None


MAX_BYTES_PER_CHAR = {"utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "ucs2": 2, "utf16": 4, "utf16le": 4, "utf32": 4,
                       "sjis": 2, "cp932": 2, "ujis": 3, "eucjpms": 3, "euckr": 2, "gbk": 2, "gb2312": 2,
                       "gb18030": 4, "big5": 2}


def max_bytes_per_char(charset: str | None) -> int:
    """The most bytes one character of `charset` takes (1 for single-byte charsets and binary)."""
    return MAX_BYTES_PER_CHAR.get(charset or "", 1)
