"""inbox_add's INSERT chunks: every batch size becomes a few power-of-two statements, so the
compiled-statement cache holds at most ten shapes of it (storage/repository/_inbox.py)."""

from __future__ import annotations

from storage.repository._inbox import INSERT_CHUNK, chunk_sizes


def test_chunks_cover_the_batch_in_power_of_two_sizes_largest_first():
    shapes = set()
    for n in range(0, 2 * INSERT_CHUNK + 7):
        sizes = chunk_sizes(n)
        assert sum(sizes) == n
        assert sizes == sorted(sizes, reverse=True)
        assert all(size & (size - 1) == 0 and 0 < size <= INSERT_CHUNK for size in sizes)
        assert len(sizes) <= n // INSERT_CHUNK + INSERT_CHUNK.bit_length()
        shapes.update(sizes)
    assert len(shapes) == INSERT_CHUNK.bit_length()  # 1, 2, 4 … 512: ten statements in all
    assert chunk_sizes(37) == [32, 4, 1]
