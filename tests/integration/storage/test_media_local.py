import asyncio
import os
import tracemalloc
from pathlib import Path

import pytest

from storage.media import (
    LocalMediaStore,
    MediaNotFoundError,
    MediaStore,
    MediaStoreError,
    MediaTooLargeError,
    StoredObject,
    UnsafePathError,
    media_path,
)


async def agen(*chunks: bytes):
    for chunk in chunks:
        yield chunk


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith(".part")]


@pytest.fixture
def store(tmp_path: Path) -> LocalMediaStore:
    return LocalMediaStore(tmp_path / "media", "http://bot.example:8080/")


async def test_put_writes_layout_path_and_reports_object(store: LocalMediaStore):
    path = media_path(42, "image", 7, 0, 1734300000, "jpg", token="")
    obj = await store.put(path, agen(b"abc", b"def"), content_type="image/jpeg")
    assert obj == StoredObject(
        path="42/image/7_0_1734300000.jpg",
        url="http://bot.example:8080/media/42/image/7_0_1734300000.jpg",
        size=6,
        content_type="image/jpeg",
    )
    assert (store.root / "42" / "image" / "7_0_1734300000.jpg").read_bytes() == b"abcdef"
    assert await store.read(path) == b"abcdef"
    assert await store.exists(path)
    assert await store.size(path) == 6
    assert isinstance(store, MediaStore)


async def test_many_chunks_stream_without_holding_the_file(store: LocalMediaStore):
    chunk = os.urandom(64 * 1024)
    count = 640  # 40 MiB in total

    async def source():
        for _ in range(count):
            yield chunk

    tracemalloc.start()
    try:
        obj = await store.put("1/video/big.mp4", source(), content_type="video/mp4")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert obj.size == count * len(chunk)
    # Write buffer is 1 MiB; a store holding the whole file would peak above 40 MiB. The bound
    # leaves room for what other threads of the process allocate meanwhile (tracemalloc sees all).
    assert peak < 8 * 1024 * 1024, peak
    assert await store.size("1/video/big.mp4") == count * len(chunk)
    parts = []
    async for piece in await store.open_stream("1/video/big.mp4"):
        parts.append(piece)
    assert len(parts) > 1
    assert b"".join(parts) == chunk * count


async def test_cap_enforced_mid_stream_and_temp_removed(store: LocalMediaStore):
    pulled = []

    async def source():
        for i in range(100):
            pulled.append(i)
            yield b"x" * 1000

    with pytest.raises(MediaTooLargeError) as info:
        await store.put("1/image/a.png", source(), content_type="image/png", max_bytes=5500)
    assert info.value.limit == 5500
    assert len(pulled) == 6  # stopped at the chunk that crossed the cap, not at the end
    assert not await store.exists("1/image/a.png")
    assert leftovers(store.root) == []


async def test_exact_cap_is_allowed(store: LocalMediaStore):
    obj = await store.put("1/image/a.png", agen(b"12345"), content_type="image/png", max_bytes=5)
    assert obj.size == 5


async def test_failing_source_leaves_no_temp_and_keeps_old_file(store: LocalMediaStore):
    await store.put("1/image/a.png", agen(b"old"), content_type="image/png")

    async def broken():
        yield b"new"
        raise ConnectionError("source dropped")

    with pytest.raises(ConnectionError):
        await store.put("1/image/a.png", broken(), content_type="image/png")
    assert await store.read("1/image/a.png") == b"old"
    assert leftovers(store.root) == []


async def test_cancelled_put_leaves_no_temp(store: LocalMediaStore):
    started = asyncio.Event()

    async def slow():
        yield b"a"
        started.set()
        await asyncio.Event().wait()
        yield b"never"

    task = asyncio.create_task(store.put("1/image/c.png", slow(), content_type="image/png"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leftovers(store.root) == []
    assert not await store.exists("1/image/c.png")


async def test_overwrite_is_atomic_replacement(store: LocalMediaStore):
    await store.put("1/image/a.png", agen(b"first version"), content_type="image/png")
    before = (store.root / "1/image/a.png").stat().st_ino
    seen_during_write = []

    async def source():
        yield b"second"
        # Mid-write, readers still see the complete old file.
        seen_during_write.append(await store.read("1/image/a.png"))
        yield b" version"

    await store.put("1/image/a.png", source(), content_type="image/png")
    assert seen_during_write == [b"first version"]
    assert await store.read("1/image/a.png") == b"second version"
    assert (store.root / "1/image/a.png").stat().st_ino != before  # renamed in, not rewritten
    assert leftovers(store.root) == []


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.jpg", "1/../../outside.jpg", "1\\x.jpg", ""])
async def test_traversal_and_absolute_paths_refused(store: LocalMediaStore, tmp_path: Path, path: str):
    with pytest.raises(UnsafePathError):
        await store.put(path, agen(b"x"), content_type="image/png")
    with pytest.raises(UnsafePathError):
        await store.read(path)
    with pytest.raises(UnsafePathError):
        await store.exists(path)
    assert not (tmp_path / "outside.jpg").exists()


async def test_symlink_escape_refused(store: LocalMediaStore, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"secret")
    store.root.mkdir(parents=True)
    (store.root / "7").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        await store.read("7/secret.png")
    with pytest.raises(UnsafePathError):
        await store.put("7/new.png", agen(b"x"), content_type="image/png")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.png"]


async def test_missing_objects(store: LocalMediaStore):
    assert not await store.exists("1/image/none.png")
    with pytest.raises(MediaNotFoundError):
        await store.read("1/image/none.png")
    with pytest.raises(MediaNotFoundError):
        await store.open_stream("1/image/none.png")
    with pytest.raises(MediaNotFoundError):
        await store.size("1/image/none.png")
    assert await store.delete("1/image/none.png") is False


async def test_delete(store: LocalMediaStore):
    await store.put("1/image/a.png", agen(b"x"), content_type="image/png")
    assert await store.delete("1/image/a.png") is True
    assert not await store.exists("1/image/a.png")


async def test_url_and_share_url(store: LocalMediaStore):
    assert store.url("1/input/5.jpg") == "http://bot.example:8080/media/1/input/5.jpg"
    assert await store.share_url("1/input/5.jpg") == store.url("1/input/5.jpg")
    with pytest.raises(UnsafePathError):
        store.url("../x")


async def test_non_bytes_chunk_is_a_typed_error(store: LocalMediaStore):
    with pytest.raises(MediaStoreError, match="bytes"):
        await store.put("1/image/a.png", agen("text"), content_type="image/png")
    assert leftovers(store.root) == []


async def test_bad_max_bytes(store: LocalMediaStore):
    with pytest.raises(ValueError):
        await store.put("1/image/a.png", agen(b"x"), content_type="image/png", max_bytes=-1)
