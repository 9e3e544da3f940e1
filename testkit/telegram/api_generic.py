"""A plausible success for every spec method the fake does not model, so a bot is never blocked by
the fake's gaps: True, or the smallest valid object of the declared return type."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .flood import counted

if TYPE_CHECKING:
    from .server import FakeTelegram

# Fields newer Bot API versions made required (aiogram 3.31 follows Bot API 10.3; the spec is 10.1).
_NEWER_REQUIRED: dict[str, dict[str, Any]] = {"ChatAdministratorRights": {"can_send_welcome_messages": False}}
_LITERAL = re.compile(r"(?:must be|always) [\"“]([a-z_]+)[\"”]|(?:must be|always) ([a-z_]+)$")


def plausible_result(fake: FakeTelegram, method: str, params: dict[str, Any]) -> Any:
    returns = fake.spec.returns(method)
    if not returns or "Boolean" in returns:
        return True
    kind = returns[0]
    if kind in ("Message", "Array of Message", "MessageId", "Array of MessageId"):
        return _message_result(fake, method, params, kind)
    return minimal(fake, kind, params, 0)


def _message_result(fake: FakeTelegram, method: str, params: dict[str, Any], kind: str) -> Any:
    chat_id = params.get("chat_id")
    chat = fake.chat(chat_id, sending=counted(method)) if chat_id is not None else None
    if chat is not None:
        message = fake.post_message(chat, {}, outgoing=True).message
    else:
        message = {"message_id": 1, "date": fake.now(), "chat": {"id": 0, "type": "private"}}
    if kind == "MessageId":
        return {"message_id": message["message_id"]}
    if kind == "Array of MessageId":
        return [{"message_id": message["message_id"]}]
    return [message] if kind.startswith("Array") else message


def minimal(fake: FakeTelegram, type_name: str, params: dict[str, Any], depth: int) -> Any:
    if type_name.startswith("Array of "):
        return []
    simple = {"Integer": 0, "Float": 0.0, "String": "", "Boolean": False}
    if type_name in simple:
        return simple[type_name]
    if type_name == "User":
        return fake.bot_user()
    if type_name == "Chat":
        return {"id": _int(params.get("chat_id")), "type": "private"}
    spec = fake.spec.types.get(type_name)
    if spec is None or depth > 8:
        return {}
    if "subtypes" in spec:
        return minimal(fake, spec["subtypes"][0], params, depth + 1)
    obj: dict[str, Any] = {}
    for field in spec.get("fields", []):
        if not field["required"]:
            continue
        match = _LITERAL.search(field.get("description", ""))
        if match and field["types"] == ["String"]:
            obj[field["name"]] = match.group(1) or match.group(2)
        elif field["name"] == "id" and field["types"] == ["Integer"] and "chat_id" in params:
            obj["id"] = _int(params["chat_id"])
        else:
            obj[field["name"]] = minimal(fake, field["types"][0], params, depth + 1)
    obj.update(_NEWER_REQUIRED.get(type_name, {}))
    return obj


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
