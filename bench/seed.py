"""Rows the measures need, written through storage.repository.Repository (the product's own
money and lifecycle rules), mostly before the bot starts."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

from kie_client.catalog import Catalog
from storage.media import media_path
from storage.models import GenerationStatus
from storage.repository import Repository

T = TypeVar("T")
BONUS = 1000
IMAGE_MODEL = "seedream_45_t2i"
VIDEO_MODEL = "kling_26_t2v"
PROMPT = "a lighthouse on a cliff at dusk"
# Seeding is setup, not measured; a few transactions at a time keep SQLite's lock queue short.
CONCURRENCY = 8


async def each(items: Sequence[T], work: Callable[[T], Awaitable[Any]]) -> list[Any]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: T) -> Any:
        async with gate:
            return await work(item)

    return await asyncio.gather(*(one(i) for i in items))


def kie_task(model_key: str = IMAGE_MODEL) -> tuple[str, dict[str, Any]]:
    """(KIE model id, KIE input) of the model at its default options."""
    catalog = Catalog()
    return catalog.get(model_key).kie_model, catalog.build_input(model_key, PROMPT, catalog.defaults(model_key))


async def users(repo: Repository, user_ids: Sequence[int]) -> None:
    async def one(uid: int) -> None:
        await repo.register_user(uid, username=f"u{uid}", first_name="User", last_name=None,
                                 language="en", signup_bonus=BONUS)
    await each(user_ids, one)


async def queued(repo: Repository, user_ids: Sequence[int], model_key: str = IMAGE_MODEL) -> list[int]:
    """One charged, queued generation per user; returns their ids in user order."""
    catalog = Catalog()
    spec = catalog.get(model_key)
    options = catalog.defaults(model_key)
    cost = catalog.price(model_key, options)

    async def one(uid: int) -> int:
        started = await repo.start_generation(
            user_id=uid, chat_id=uid, model_key=model_key, kind=spec.kind.value, cost=cost,
            options=options, request_key=f"bench-{secrets.token_hex(6)}", prompt=PROMPT)
        return started.generation.id
    return await each(user_ids, one)


async def generating(repo: Repository, generation_ids: Sequence[int], task_ids: Sequence[str], *,
                     poll_in: float = 0.0) -> None:
    """queued → generating with KIE's task id, as the submitter leaves a row; the first poll is
    due in `poll_in` seconds (webhook mode waits for the callback first)."""
    now = datetime.now(timezone.utc)
    due = now + timedelta(seconds=poll_in)

    async def one(pair: tuple[int, str]) -> None:
        gid, task_id = pair
        moved = await repo.transition(gid, from_statuses={GenerationStatus.queued},
                                      to_status=GenerationStatus.generating, task_id=task_id,
                                      submitted_at=now, kie_state="generating", next_poll_at=due, now=now)
        if not moved:
            raise RuntimeError(f"generation {gid} could not be moved to generating")
    await each(list(zip(generation_ids, task_ids)), one)


async def generating_rows(world: Any, user_ids: Sequence[int], *, callbacks: bool,
                          poll_in: float = 0.0) -> tuple[list[int], list[str]]:
    """Users, their generations and matching held tasks in the emulator (calling back to the bot
    when `callbacks`); returns (generation ids, task ids) in user order."""
    await users(world.repo, user_ids)
    gids = await queued(world.repo, user_ids)
    model, given = kie_task()
    if callbacks:
        task_ids = await world.kie.add_tasks(model, given, callback_urls=[world.callback_url(g) for g in gids])
    else:
        task_ids = await world.kie.add_tasks(model, given, count=len(gids))
    await generating(world.repo, gids, task_ids, poll_in=poll_in)
    return gids, task_ids


async def delivered(repo: Repository, generation_ids: Sequence[int]) -> int:
    """How many of these generations are marked delivered."""
    rows = await each(generation_ids, repo.get_generation)
    return sum(1 for g in rows if g is not None and g.delivered_at is not None)


async def succeeded_video(repo: Repository, media_dir: Path, user_id: int, size: int) -> int:
    """A succeeded, undelivered video whose stored file (MEDIA_DIR) is `size` bytes."""
    (gid,) = await queued(repo, [user_id], VIDEO_MODEL)
    now = datetime.now(timezone.utc)
    task_id = secrets.token_hex(16)
    await generating(repo, [gid], [task_id])
    path = media_path(user_id, "video", gid, 0, now, "mp4")
    target = media_dir / path
    target.parent.mkdir(parents=True, exist_ok=True)
    write_file(target, size)
    await repo.transition(gid, from_statuses={GenerationStatus.generating},
                          to_status=GenerationStatus.storing, now=now)
    moved = await repo.transition(gid, from_statuses={GenerationStatus.storing},
                                  to_status=GenerationStatus.succeeded, stored_paths=[path],
                                  result_urls=[f"http://127.0.0.1:9/{task_id}.mp4"],
                                  completed_at=now, now=now)
    if not moved:
        raise RuntimeError(f"generation {gid} could not be moved to succeeded")
    return gid


def write_file(target: Path, size: int) -> None:
    """A file of `size` bytes that starts like an MP4 (ftyp box), written in 1 MB blocks."""
    block = secrets.token_bytes(1 << 20)
    with open(target, "wb") as f:
        f.write(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom")
        written = 24
        while written < size:
            chunk = block[: size - written]
            f.write(chunk)
            written += len(chunk)
