"""Support messages and bans (/paysupport, an admin's reply to it, /ban and /unban)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.errors import UnknownUserError
from storage.repository._base import RepositoryBase, check_id, check_text, to_utc, utcnow
from storage.schema import support_admin_messages, support_messages, users

_TEXT_LIMIT = 4096


def _insert_new(dialect: str) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING message_id (a row back = it was new)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    table = support_admin_messages
    return insert(table).on_conflict_do_nothing().returning(table.c.message_id)


def _insert_ignoring(dialect: str, table: Any) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING on `table` (any unique key)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


class SupportRepository(RepositoryBase):
    async def set_banned(self, user_id: int, banned: bool) -> bool:
        """True when the flag changed; UnknownUserError for a user we never saw."""
        check_id("user_id", user_id)
        async with self._tx() as conn:
            current = await conn.scalar(sa.select(users.c.banned).where(users.c.id == user_id))
            if current is None:
                raise UnknownUserError(user_id)
            if bool(current) == bool(banned):
                return False
            await conn.execute(sa.update(users).where(users.c.id == user_id)
                               .values(banned=bool(banned)))
            return True

    async def add_support_message(self, user_id: int, text: str,
                                  forwards: list[tuple[int, int]], *,
                                  now: datetime | None = None) -> int:
        """Store a user's support message and the (admin chat, message id) of each admin's copy."""
        check_id("user_id", user_id)
        check_text("text", text, max_length=_TEXT_LIMIT)
        for admin_id, message_id in forwards:
            check_id("admin_id", admin_id)
            check_id("message_id", message_id)
        at = to_utc(now) or utcnow()
        async with self._tx() as conn:
            support_id = await conn.scalar(
                sa.insert(support_messages).values(user_id=user_id, text=text, created_at=at)
                .returning(support_messages.c.id))
            if forwards:
                await conn.execute(sa.insert(support_admin_messages), [
                    {"admin_id": a, "message_id": m, "support_id": support_id, "kind": "forward",
                     "text": None, "created_at": at} for a, m in forwards])
        return int(support_id)

    async def claim_support_message(self, user_id: int, text: str, *, chat_id: int,
                                    message_id: int, now: datetime | None = None) -> int | None:
        """Store a user's support message keyed by their own message (chat, message id), before
        anything is forwarded: the support id, or None when that message was stored before (a
        replayed update), so it reaches the admins once. A crash after this and before the
        forwards loses the forwards rather than sending them twice."""
        check_id("user_id", user_id)
        check_id("chat_id", chat_id)
        check_id("message_id", message_id)
        check_text("text", text, max_length=_TEXT_LIMIT)
        at = to_utc(now) or utcnow()
        async with self._tx() as conn:
            insert = _insert_ignoring(conn.dialect.name, support_messages)
            row = (await conn.execute(insert.returning(support_messages.c.id), {
                "user_id": user_id, "text": text, "created_at": at, "chat_id": chat_id,
                "message_id": message_id})).first()
        return int(row.id) if row is not None else None

    async def add_support_forwards(self, support_id: int, forwards: list[tuple[int, int]], *,
                                   now: datetime | None = None) -> None:
        """The (admin chat, message id) of each admin's copy of a claimed support message."""
        check_id("support_id", support_id)
        for admin_id, message_id in forwards:
            check_id("admin_id", admin_id)
            check_id("message_id", message_id)
        if not forwards:
            return
        at = to_utc(now) or utcnow()
        async with self._tx() as conn:
            await conn.execute(sa.insert(support_admin_messages), [
                {"admin_id": a, "message_id": m, "support_id": support_id, "kind": "forward",
                 "text": None, "created_at": at} for a, m in forwards])

    async def support_for_forward(self, admin_id: int, message_id: int) -> tuple[int, int] | None:
        """(support id, user id) of the support message whose copy `message_id` in the admin's
        chat is, else None."""
        check_id("admin_id", admin_id)
        check_id("message_id", message_id)
        sam, sm = support_admin_messages, support_messages
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(sm.c.id, sm.c.user_id).join(sam, sam.c.support_id == sm.c.id)
                .where(sam.c.admin_id == admin_id, sam.c.message_id == message_id,
                       sam.c.kind == "forward"))).first()
        return (int(row.id), int(row.user_id)) if row else None

    async def record_support_reply(self, support_id: int, admin_id: int, message_id: int,
                                   text: str, *, now: datetime | None = None) -> bool:
        """Record an admin's reply keyed by their message: False when it was recorded before
        (a replayed update), so the reply is passed on once."""
        check_id("support_id", support_id)
        check_id("admin_id", admin_id)
        check_id("message_id", message_id)
        check_text("text", text, max_length=_TEXT_LIMIT)
        async with self._tx() as conn:
            row = (await conn.execute(_insert_new(conn.dialect.name), {
                "admin_id": admin_id, "message_id": message_id, "support_id": support_id,
                "kind": "reply", "text": text, "created_at": to_utc(now) or utcnow()})).first()
        return row is not None

    async def support_messages_of(self, user_id: int) -> list[dict[str, Any]]:
        check_id("user_id", user_id)
        async with self._read() as conn:
            rows = await conn.execute(sa.select(support_messages)
                                      .where(support_messages.c.user_id == user_id)
                                      .order_by(support_messages.c.id))
            return [dict(r._mapping) for r in rows]
