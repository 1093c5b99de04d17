"""A sync's acknowledged state held in the worker while a run plans: per key, the md5 the
destination acknowledged last, as two 64-bit words sorted by the first, beside the key.

A (key, hash) batch from the source is looked up in it with vectorised operations (a
sorted search, then the key compared exactly): a row found with the same key and the same
md5 (all 128 bits) holds exactly an acknowledged record and is unchanged. Every other row
(added, changed, or a hash that is not 32 lowercase hex digits) goes to the portal's SQL,
which decides it against the state table exactly, as do the state's records no row
matched (changed or removed). So an unchanged record, 99% of a typical run, never leaves
the worker, and nothing the index cannot read is taken for unchanged.

Memory: 22 bytes plus the key's text per acknowledged key (planning decides when a
state is small enough, SYNC_PLAN_MEMORY_MB)."""

from __future__ import annotations

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection, transaction

from sharing.models import SyncRecordState

# Each byte's value as a hex digit (lowercase, as md5 text is on every engine), 255 if not.
_HEX_DIGIT = np.full(256, 255, dtype=np.uint8)
for _value, _char in enumerate(b"0123456789abcdef"):
    _HEX_DIGIT[_char] = _value

# Bytes per acknowledged key, beside its text: two hash words, the key's offset, the seen
# and readable flags.
BYTES_PER_KEY = 8 + 8 + 4 + 1 + 1


def as_text(values) -> pa.Array:
    """A column of text as one pa.string() array (engines give large_string or views)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.string():
        values = values.cast(pa.string())
    return values


def md5_words(hashes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each md5 text (32 lowercase hex digits) as two 64-bit words (high, low), and whether
    the value is one: anything else (NULL, upper case, another length) is not, and its
    words are meaningless."""
    hashes = as_text(hashes)
    count = len(hashes)
    lengths = pc.binary_length(hashes)
    readable = pc.equal(lengths, 32).fill_null(False).to_numpy(zero_copy_only=False)
    if count == 0:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, empty, readable
    if not readable.all():  # every value 32 bytes long, so that the text is one block
        hashes = pc.if_else(pa.array(readable), hashes, pa.scalar("-" * 32))
    start = np.frombuffer(hashes.buffers()[1], dtype=np.int32)[hashes.offset]
    text = np.frombuffer(hashes.buffers()[2], dtype=np.uint8)[start : start + 32 * count]
    digits = _HEX_DIGIT[text].reshape(count, 32)
    readable &= (digits < 16).all(axis=1)
    packed = (digits[:, 0::2] << 4) | digits[:, 1::2]  # 16 bytes per hash, big-endian
    words = packed.view(">u8")
    return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64), readable


# The state in 16 rows of aggregates, one per first hex digit of the hash (so that each
# row's sorted words follow the previous row's): the digests (16 bytes each, decoded from
# hex by the server), whether each hash was 32 characters long, each key's byte length and
# the keys' bytes. A query's aggregates take a group's rows in one order.
_LOAD_SQL = """
SELECT count(*), string_agg(digest, ''),
    string_agg(CASE WHEN readable THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''),
    string_agg(int4send(octet_length(key)), ''), string_agg(convert_to(key, 'UTF8'), '')
FROM (
    SELECT key, octet_length(row_hash) = 32 AS readable,
        CASE WHEN octet_length(row_hash) = 32 THEN decode(row_hash, 'hex') ELSE %s END AS digest
    FROM {table} WHERE sync_id = %s
) acknowledged
GROUP BY get_byte(digest, 0) >> 4 ORDER BY get_byte(digest, 0) >> 4
"""


class StateIndex:
    """The acknowledged (key, md5) pairs of one sync, sorted by the md5's high word."""

    def __init__(self, keys: pa.Array, high: np.ndarray, low: np.ndarray, readable) -> None:
        self.keys, self.high, self.low, self.readable = keys, high, low, readable
        self.seen = np.zeros(len(high), dtype=bool)

    def __len__(self) -> int:
        return len(self.high)

    @classmethod
    def load(cls, sync_id: int, *, rows: int, key_bytes: int) -> StateIndex | None:
        """The sync's state (`rows` records, `key_bytes` of keys, as counted just before),
        read from the portal a part at a time (_LOAD_SQL, fetched one row at a time from a
        cursor of the server) into arrays of exactly that size. No record crosses the wire
        alone and nothing is parsed: the keys become an Arrow array with their lengths as
        offsets. None where a hash is not hex (there is no digest to hold) or the state
        changed meanwhile: the plan is then made in SQL."""
        index = _Arrays(rows, key_bytes)
        connection.ensure_connection()
        try:
            # psycopg's own cursor on the portal's session, for binary results (bytea as
            # bytes; Django's client-side cursor has text results only: hex, twice the size).
            with (
                transaction.atomic(),
                psycopg.ServerCursor(connection.connection, f"sync_state_{sync_id}") as cur,
            ):
                cur.itersize = 1  # one part in memory at once
                sql = _LOAD_SQL.format(table=SyncRecordState._meta.db_table)
                cur.execute(sql, [bytes(16), sync_id], binary=True)
                for row in cur:
                    if not index.add(*row):
                        return None
        except psycopg.DataError:  # "invalid hexadecimal digit"
            return None
        if not index.full():
            return None
        return cls(index.key_array(), index.high, index.low, index.readable)

    def unchanged(self, keys, hashes) -> np.ndarray:
        """Which of these (key, hash) rows hold exactly an acknowledged record: the same key
        and the same md5. Those records are marked seen."""
        high, low, readable = md5_words(hashes)
        found = np.zeros(len(high), dtype=bool)
        if not len(self) or not len(high):
            return found
        # A sorted search is ~4x faster with the needles in order (cache-friendly).
        order = np.argsort(high)
        at = np.empty(len(high), dtype=np.intp)
        at[order] = np.searchsorted(self.high, high[order])
        np.minimum(at, len(self) - 1, out=at)
        found = readable & self.readable[at] & (self.high[at] == high) & (self.low[at] == low)
        rows = np.flatnonzero(found)
        same_key = pc.equal(self.keys.take(pa.array(at[rows])), as_text(keys).take(pa.array(rows)))
        same_key = same_key.fill_null(False).to_numpy(zero_copy_only=False)
        found[rows[~same_key]] = False
        self.seen[at[rows[same_key]]] = True
        return found

    def unseen_keys(self) -> pa.Array:
        """The acknowledged keys no row matched so far: changed or removed ones."""
        return self.keys.filter(pa.array(~self.seen))


class _Arrays:
    """The index's arrays, allocated once at their final size and filled a part at a time
    (each part sorted by the high word, the parts in the order of their first digit)."""

    def __init__(self, rows: int, key_bytes: int) -> None:
        self.high = np.zeros(rows, dtype=np.uint64)
        self.low = np.zeros(rows, dtype=np.uint64)
        self.readable = np.zeros(rows, dtype=bool)
        self.offsets = np.zeros(rows + 1, dtype=np.int32)  # key_bytes < 2**31 (planning)
        self.key_data = np.zeros(key_bytes, dtype=np.uint8)
        self.filled = 0

    def add(
        self, count: int, digests: bytes, readable: bytes, key_lengths: bytes, key_bytes: bytes
    ) -> bool:
        """One row of _LOAD_SQL put in place; False if it does not fit (the state grew)."""
        start, end = self.filled, self.filled + count
        if end > len(self.high):
            return False
        words = np.frombuffer(digests, dtype=">u8").reshape(count, 2)
        order = np.argsort(words[:, 0])
        self.high[start:end] = words[order, 0]
        self.low[start:end] = words[order, 1]
        self.readable[start:end] = np.frombuffer(readable, dtype=np.bool_)[order]
        # The part's keys in the same order (an Arrow take), their bytes then moved in.
        part_offsets = np.zeros(count + 1, dtype=np.int32)
        np.cumsum(np.frombuffer(key_lengths, dtype=">i4"), out=part_offsets[1:])
        keys = pa.Array.from_buffers(
            pa.string(), count, [None, pa.py_buffer(part_offsets), pa.py_buffer(key_bytes)]
        ).take(pa.array(order))
        taken_offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32)[: count + 1]
        taken = np.frombuffer(keys.buffers()[2], dtype=np.uint8)
        base = self.offsets[start]
        size = int(taken_offsets[-1] - taken_offsets[0])
        if base + size > len(self.key_data):
            return False
        self.offsets[start + 1 : end + 1] = base + (taken_offsets[1:] - taken_offsets[0])
        self.key_data[base : base + size] = taken[taken_offsets[0] : taken_offsets[-1]]
        self.filled = end
        return True

    def full(self) -> bool:
        return self.filled == len(self.high) and self.offsets[-1] == len(self.key_data)

    def key_array(self) -> pa.Array:
        return pa.Array.from_buffers(
            pa.string(),
            len(self.high),
            [None, pa.py_buffer(self.offsets), pa.py_buffer(self.key_data)],
        )
