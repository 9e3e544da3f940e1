from datetime import datetime, timezone

import pytest

from storage.media import (
    MediaStoreError,
    UnsafePathError,
    extension_for,
    input_path,
    media_path,
    new_token,
    validate_object_path,
)


def test_media_path_matches_origin_layout_plus_a_token():
    assert media_path("abc-123", "image", "gen-456", 0, 1734300000, "jpg", token="Ab_-9") == (
        "abc-123/image/gen-456_0_1734300000_Ab_-9.jpg"
    )
    assert media_path(42, "video", 7, 2, 1734300000.9, ".MP4", token="t") == "42/video/7_2_1734300000_t.mp4"
    # token="": the name objects stored before the token had (still found via stored_paths)
    assert media_path(42, "video", 7, 2, 1734300000, "mp4", token="") == "42/video/7_2_1734300000.mp4"


def test_names_cannot_be_guessed_from_ids_and_times():
    """Same user, generation, index and second: every new name differs in 128 random bits."""
    paths = {media_path(42, "image", 7, 0, 1734300000, "png") for _ in range(200)}
    assert len(paths) == 200
    for path in paths:
        assert path.startswith("42/image/7_0_1734300000_") and validate_object_path(path) == path
        token = path.removeprefix("42/image/7_0_1734300000_").removesuffix(".png")
        assert len(token) == 22, path  # 16 random bytes, URL-safe base64
    inputs = {input_path(42, "r1", "jpg") for _ in range(200)}
    assert len(inputs) == 200 and all(p.startswith("42/input/r1_") for p in inputs)
    assert len(new_token()) == 22 and new_token() != new_token()


def test_a_token_is_one_safe_segment_part():
    for bad in ("../x", "a/b", "a.b", "x" * 65):
        with pytest.raises(UnsafePathError):
            media_path(1, "image", 2, 0, 3, "png", token=bad)
        with pytest.raises(UnsafePathError):
            input_path(1, 2, "png", token=bad)


def test_media_path_uses_enum_values():
    import enum

    class Kind(str, enum.Enum):
        IMAGE = "image"

    assert media_path(1, Kind.IMAGE, 2, 0, 3, "png", token="") == "1/image/2_0_3.png"


def test_media_path_accepts_aware_datetime_and_refuses_naive():
    ts = datetime(2024, 12, 15, 22, 0, tzinfo=timezone.utc)
    assert media_path(1, "image", 2, 0, ts, "png", token="") == f"1/image/2_0_{int(ts.timestamp())}.png"
    with pytest.raises(UnsafePathError, match="timezone-aware"):
        media_path(1, "image", 2, 0, datetime(2024, 1, 1), "png")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": "../etc"},
        {"user_id": "a/b"},
        {"user_id": ""},
        {"user_id": True},
        {"kind": ".."},
        {"kind": "im age"},
        {"generation_id": "x\\y"},
        {"generation_id": None},
        {"index": -1},
        {"index": "0"},
        {"timestamp": -5},
        {"timestamp": "now"},
        {"ext": "exe"},
        {"ext": "jpg/../x"},
        {"ext": ""},
    ],
)
def test_media_path_rejects_bad_parts(kwargs):
    args = {"user_id": 1, "kind": "image", "generation_id": 2, "index": 0, "timestamp": 1, "ext": "jpg"}
    args.update(kwargs)
    with pytest.raises(UnsafePathError) as info:
        media_path(**args)
    assert isinstance(info.value, (MediaStoreError, ValueError))


def test_input_path():
    assert input_path(42, 7, "jpeg", token="k") == "42/input/7_k.jpeg"
    assert input_path(42, 7, "jpeg", token="") == "42/input/7.jpeg"
    with pytest.raises(UnsafePathError):
        input_path("..", 7, "jpg")


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a\\b", "C:/x", ".hidden/x", "a/b\x00", "", "a/b c"],
)
def test_validate_object_path_rejects(path):
    with pytest.raises(UnsafePathError):
        validate_object_path(path)


def test_validate_object_path_accepts_layout_paths():
    path = media_path(1, "image", 2, 0, 3, "webp")
    assert validate_object_path(path) == path


@pytest.mark.parametrize(
    ("content_type", "url", "expected"),
    [
        ("image/jpeg", None, "jpg"),
        ("video/mp4; codecs=avc1", None, "mp4"),
        ("application/octet-stream", "https://x/y/file.PNG?sig=1", "png"),
        (None, "https://x/y/file.exe", "bin"),
        (None, None, "bin"),
    ],
)
def test_extension_for(content_type, url, expected):
    assert extension_for(content_type, url) == expected
