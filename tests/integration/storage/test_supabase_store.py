"""SupabaseMediaStore against the fake Supabase Storage, over real HTTP on loopback."""

import logging
import time

import httpx
import pytest
from storage3 import AsyncStorageClient

from storage.media import MediaNotFoundError, MediaStore, MediaStoreError, MediaTooLargeError, UnsafePathError
from storage.supabase_store import SupabaseMediaStore
from testkit.supabase import FakeSupabaseStorage, decode_token_payload

KEY = "service-role-SECRET-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def agen(*chunks: bytes):
    for chunk in chunks:
        yield chunk


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock):
    async with FakeSupabaseStorage(KEY, clock=clock) as server:
        yield server


@pytest.fixture
async def store(fake: FakeSupabaseStorage):
    async with SupabaseMediaStore(fake.url, KEY) as s:
        yield s


@pytest.fixture
async def private_store(fake: FakeSupabaseStorage):
    async with SupabaseMediaStore(fake.url, KEY, "private-media", public=False, signed_url_ttl=600) as s:
        yield s


async def test_bucket_created_when_missing_and_not_recreated(fake: FakeSupabaseStorage, store: SupabaseMediaStore):
    assert "generations" not in fake.buckets
    await store.put("1/image/a.png", agen(b"one"), content_type="image/png")
    await store.put("1/image/b.png", agen(b"two"), content_type="image/png")
    assert fake.buckets["generations"].public is True
    assert fake.count("POST", "/storage/v1/bucket") == 1
    assert fake.count("GET", "/storage/v1/bucket/generations") == 1

    # A second store (another process) finds the bucket and does not create it again.
    async with SupabaseMediaStore(fake.url, KEY) as other:
        await other.put("1/image/c.png", agen(b"three"), content_type="image/png")
    assert fake.count("POST", "/storage/v1/bucket") == 1
    assert fake.count("GET", "/storage/v1/bucket/generations") == 2


async def test_create_race_with_another_creator_is_fine(fake: FakeSupabaseStorage, monkeypatch):
    async with SupabaseMediaStore(fake.url, KEY) as s:
        real_get = AsyncStorageClient.get_bucket

        async def get_then_lose_race(self, bucket_id):
            try:
                return await real_get(self, bucket_id)
            finally:
                # Someone else creates the bucket right after our lookup said "missing".
                async with httpx.AsyncClient() as c:
                    await c.post(
                        f"{fake.url}/storage/v1/bucket",
                        json={"id": bucket_id, "name": bucket_id, "public": True},
                        headers={"apikey": KEY, "Authorization": f"Bearer {KEY}"},
                    )

        monkeypatch.setattr(AsyncStorageClient, "get_bucket", get_then_lose_race)
        await s.ensure_bucket()
        await s.put("1/image/a.png", agen(b"x"), content_type="image/png")
    assert fake.count("POST", "/storage/v1/bucket") == 2  # theirs, and our 409 treated as success


async def test_upload_keeps_content_type_and_public_url_is_fetchable(
    fake: FakeSupabaseStorage, store: SupabaseMediaStore
):
    obj = await store.put("42/image/7_0_1734300000.jpg", agen(b"\xff\xd8", b"jpegdata"), content_type="image/jpeg")
    assert obj.size == 10
    assert obj.content_type == "image/jpeg"
    assert obj.url == f"{fake.url}/storage/v1/object/public/generations/42/image/7_0_1734300000.jpg"
    assert obj.url == store.url(obj.path)
    # Our URL is exactly what storage3 itself would build.
    assert obj.url == await store._client().from_("generations").get_public_url(obj.path)
    stored = fake.objects[("generations", obj.path)]
    assert stored.content_type == "image/jpeg"
    async with httpx.AsyncClient() as anonymous:
        response = await anonymous.get(obj.url)
    assert response.status_code == 200
    assert response.content == b"\xff\xd8jpegdata"
    assert response.headers["content-type"] == "image/jpeg"


async def test_upload_overwrites(store: SupabaseMediaStore):
    await store.put("1/image/a.png", agen(b"old"), content_type="image/png")
    await store.put("1/image/a.png", agen(b"new"), content_type="image/png")
    assert await store.read("1/image/a.png") == b"new"


async def test_private_bucket_gives_working_signed_url_with_expiry(
    fake: FakeSupabaseStorage, private_store: SupabaseMediaStore, clock: Clock
):
    obj = await private_store.put("5/video/9_0_1.mp4", agen(b"movie"), content_type="video/mp4")
    assert fake.buckets["private-media"].public is False
    assert obj.url.startswith(f"{fake.url}/storage/v1/object/sign/private-media/5/video/9_0_1.mp4?token=")
    token = httpx.URL(obj.url).params["token"]
    assert decode_token_payload(token)["exp"] == int(clock.now) + 600

    async with httpx.AsyncClient() as anonymous:
        assert (await anonymous.get(obj.url)).content == b"movie"
        # No public URL for a private bucket.
        public = f"{fake.url}/storage/v1/object/public/private-media/5/video/9_0_1.mp4"
        assert (await anonymous.get(public)).status_code >= 400
        clock.now += 601
        expired = await anonymous.get(obj.url)
        assert expired.status_code == 400
        assert "exp" in expired.json()["message"]

    with pytest.raises(MediaStoreError, match="private"):
        private_store.url(obj.path)
    fresh = await private_store.share_url(obj.path)
    assert decode_token_payload(httpx.URL(fresh).params["token"])["exp"] == int(clock.now) + 600
    custom = await private_store.signed_url(obj.path, ttl=30)
    assert decode_token_payload(httpx.URL(custom).params["token"])["exp"] == int(clock.now) + 30


async def test_download_stream_exists_size_delete(store: SupabaseMediaStore):
    payload = bytes(range(256)) * 4096  # 1 MiB
    await store.put("3/video/1_0_2.mp4", agen(payload[:1000], payload[1000:]), content_type="video/mp4")
    assert await store.read("3/video/1_0_2.mp4") == payload
    pieces = [chunk async for chunk in await store.open_stream("3/video/1_0_2.mp4", chunk_size=65536)]
    assert b"".join(pieces) == payload
    assert len(pieces) > 1
    assert await store.exists("3/video/1_0_2.mp4")
    assert await store.size("3/video/1_0_2.mp4") == len(payload)
    assert await store.delete("3/video/1_0_2.mp4") is True
    assert not await store.exists("3/video/1_0_2.mp4")
    assert await store.delete("3/video/1_0_2.mp4") is False


async def test_missing_object_is_not_found(store: SupabaseMediaStore):
    await store.ensure_bucket()
    assert not await store.exists("1/image/missing.png")
    with pytest.raises(MediaNotFoundError):
        await store.read("1/image/missing.png")
    with pytest.raises(MediaNotFoundError):
        await store.open_stream("1/image/missing.png")
    with pytest.raises(MediaNotFoundError):
        await store.size("1/image/missing.png")
    with pytest.raises(MediaNotFoundError):
        await store.signed_url("1/image/missing.png")


async def test_missing_bucket_reads_as_not_found(store: SupabaseMediaStore, fake: FakeSupabaseStorage):
    assert "generations" not in fake.buckets
    with pytest.raises(MediaNotFoundError):
        await store.read("1/image/a.png")
    assert not await store.exists("1/image/a.png")


async def test_wrong_key_is_a_store_error_without_the_key(caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "WRONG-key-should-never-leak-42"
    async with FakeSupabaseStorage(KEY, leak_auth_in_errors=True) as fake:
        async with SupabaseMediaStore(fake.url, wrong) as s:
            errors = []
            for call in (
                lambda: s.put("1/image/a.png", agen(b"x"), content_type="image/png"),
                lambda: s.read("1/image/a.png"),
                lambda: s.exists("1/image/a.png"),
                lambda: s.open_stream("1/image/a.png"),
            ):
                with pytest.raises(MediaStoreError) as info:
                    await call()
                assert not isinstance(info.value, MediaNotFoundError)
                errors.append(info.value)
            assert fake.objects == {}
    for error in errors:
        text = f"{error} {error!r} {error.args}"
        assert "401" in text
        assert wrong not in text
        assert KEY not in text
        assert error.__cause__ is None
    assert "<redacted>" in str(errors[0])  # the fake did echo it; we scrubbed it
    assert wrong not in caplog.text


def test_repr_hides_key():
    s = SupabaseMediaStore("https://project.supabase.co", KEY)
    assert KEY not in repr(s)
    assert isinstance(s, MediaStore)


async def test_unreachable_server_is_retryable_store_error(unused_port: int):
    async with SupabaseMediaStore(f"http://127.0.0.1:{unused_port}", KEY) as s:
        with pytest.raises(MediaStoreError) as info:
            await s.read("1/image/a.png")
    assert info.value.retryable
    assert KEY not in str(info.value)


async def test_cap_bounds_the_buffer(fake: FakeSupabaseStorage, store: SupabaseMediaStore):
    pulled = []

    async def source():
        for i in range(50):
            pulled.append(i)
            yield b"x" * 1000

    with pytest.raises(MediaTooLargeError) as info:
        await store.put("1/image/a.png", source(), content_type="image/png", max_bytes=2500)
    assert info.value.limit == 2500
    assert len(pulled) == 3
    assert fake.objects == {}


async def test_default_cap_applies_without_max_bytes(fake: FakeSupabaseStorage):
    async with SupabaseMediaStore(fake.url, KEY, default_max_bytes=4) as s:
        with pytest.raises(MediaTooLargeError):
            await s.put("1/image/a.png", agen(b"12345"), content_type="image/png")


async def test_unsafe_paths_refused_before_any_request(fake: FakeSupabaseStorage, store: SupabaseMediaStore):
    for path in ("../x.png", "/abs.png", "1/./a.png", "a\\b"):
        with pytest.raises(UnsafePathError):
            await store.put(path, agen(b"x"), content_type="image/png")
        with pytest.raises(UnsafePathError):
            await store.read(path)
    assert fake.requests == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "project.supabase.co"},
        {"service_role_key": ""},
        {"bucket": "a/b"},
        {"signed_url_ttl": 0},
    ],
)
def test_bad_configuration(kwargs):
    args = {"url": "https://p.supabase.co", "service_role_key": KEY}
    args.update(kwargs)
    with pytest.raises(ValueError) as info:
        SupabaseMediaStore(**args)
    assert KEY not in str(info.value)


async def test_fake_rejects_missing_auth(fake: FakeSupabaseStorage):
    async with httpx.AsyncClient() as c:
        response = await c.get(f"{fake.url}/storage/v1/bucket")
        assert response.status_code == 401
        response = await c.get(f"{fake.url}/storage/v1/bucket", headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 401  # apikey header is required too
        response = await c.get(
            f"{fake.url}/storage/v1/bucket", headers={"Authorization": f"Bearer {KEY}", "apikey": KEY}
        )
        assert response.status_code == 200


async def test_signed_url_for_other_path_or_tampered_token_refused(
    fake: FakeSupabaseStorage, private_store: SupabaseMediaStore
):
    obj = await private_store.put("5/image/1_0_1.png", agen(b"a"), content_type="image/png")
    await private_store.put("5/image/2_0_1.png", agen(b"b"), content_type="image/png")
    token = httpx.URL(obj.url).params["token"]
    async with httpx.AsyncClient() as c:
        other = f"{fake.url}/storage/v1/object/sign/private-media/5/image/2_0_1.png?token={token}"
        assert (await c.get(other)).status_code == 400
        assert (await c.get(obj.url + "x")).status_code == 400
