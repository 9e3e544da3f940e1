"""Checks a call against the official Bot API method list and field types (botapi-10.1.json).

Deliberately stricter than the official server, so a bot's mistake fails a test instead of being
silently ignored in production:
- an unknown parameter is refused (the real server ignores it);
- inside JSON objects, unknown fields are refused too (the real server ignores them);
- nested values must have their JSON type (a number where a String is declared is refused).
Top-level values arrive as strings over form encodings, so they are converted like the real
server does ("7" → 7, "true" → True, JSON text → object).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

from .errors import ApiError, bad_request

SPEC_FILE = "botapi-10.1.json"
_ARRAY = "Array of "
_MUST_BE = re.compile(r"(?:must be|always) [\"“]?([a-z_]+)[\"”]?")
# Objects are checked this deep; beyond it any JSON object is accepted.
MAX_DEPTH = 6


@dataclass
class Upload:
    """A multipart file part: what the bot uploaded."""

    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


def load_spec_json() -> dict[str, Any]:
    text = resources.files(__package__).joinpath(SPEC_FILE).read_text(encoding="utf-8")
    return json.loads(text)


class Spec:
    """The method list and object types, with a checker for one call."""

    def __init__(self, data: dict[str, Any] | None = None):
        self.data = data if data is not None else load_spec_json()
        self.methods: dict[str, dict[str, Any]] = self.data["methods"]
        self.types: dict[str, dict[str, Any]] = self.data["types"]
        self.version: str = self.data.get("version", "")

    @cached_property
    def _by_lower(self) -> dict[str, str]:
        return {name.lower(): name for name in self.methods}

    def method_name(self, name: str) -> str:
        """Canonical camelCase name; the official server matches case-insensitively."""
        canonical = self._by_lower.get(name.lower())
        if canonical is None:
            raise ApiError(404, "Not Found: method not found")
        return canonical

    def returns(self, method: str) -> list[str]:
        return list(self.methods[method].get("returns", []))

    def check_call(
        self, method: str, raw: dict[str, Any], files: dict[str, Upload]
    ) -> dict[str, Any]:
        """Return the decoded parameters or raise a 400 naming the offending parameter."""
        fields = {f["name"]: f for f in self.methods[method].get("fields", [])}
        raw = {k: v for k, v in raw.items() if v is not None}  # JSON null means "not given"
        for name in raw:
            if name not in fields:
                raise bad_request(f'unknown parameter "{name}" for method {method}')
        for name, spec in fields.items():
            if spec["required"] and (name not in raw or raw[name] is None):
                raise bad_request(f'parameter "{name}" is required for method {method}')
        out: dict[str, Any] = {}
        for name, value in raw.items():
            out[name] = self._top_level(name, value, fields[name]["types"], files)
        return out

    def _top_level(self, name: str, value: Any, types: list[str], files: dict[str, Upload]) -> Any:
        if isinstance(value, Upload):
            if "InputFile" in types:
                return value
            raise bad_request(f'parameter "{name}" must be {_describe(types)}, got a file upload')
        if isinstance(value, str) and value.startswith("attach://") and "InputFile" in types:
            part = files.get(value[len("attach://"):])
            if part is None:
                raise bad_request(f'parameter "{name}" refers to a missing file part {value!r}')
            return part
        if isinstance(value, str):
            value = _from_string(name, value, types)
        return self.check_value(value, types, name, 0)

    def check_value(self, value: Any, types: list[str], path: str, depth: int) -> Any:
        if len(types) > 1 and all(t.startswith(_ARRAY) for t in types) and isinstance(value, list):
            # "Array of A or Array of B" (sendMediaGroup): each item may be any of them, as in
            # Telegram's albums mixing photos and videos; the method checks the mixing rules.
            inner = [t[len(_ARRAY):] for t in types]
            return [self.check_value(v, inner, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        types = self._by_discriminator(value, types, path)
        errors: list[ApiError] = []
        for candidate in types:
            try:
                return self._check_one(value, candidate, path, depth)
            except ApiError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        best = self._best_error(value, types, errors)
        if best is not None:
            raise best
        raise bad_request(f'parameter "{path}" must be {_describe(types)}, got {_kind(value)}')

    def _discriminator(self, type_name: str) -> tuple[str, str] | None:
        fields = self.types.get(type_name, {}).get("fields", [])
        for fspec in fields:
            literal = _literal(fspec)
            if literal is not None:
                return fspec["name"], literal
        return None

    def _by_discriminator(self, value: Any, types: list[str], path: str) -> list[str]:
        """Pick the variants of a union whose "type"/"status" literal matches the value's."""
        if len(types) < 2 or not isinstance(value, dict):
            return types
        literals = {t: self._discriminator(t) for t in types}
        keys = {lit[0] for lit in literals.values() if lit}
        if len(keys) != 1 or not all(literals.values()):
            return types
        key = keys.pop()
        matching = [t for t, lit in literals.items() if lit and value.get(key) == lit[1]]
        if not matching:
            allowed = ", ".join(sorted(f'"{lit[1]}"' for lit in literals.values() if lit))
            raise bad_request(f'field "{path}.{key}" must be one of {allowed}, got {value.get(key)!r}')
        return matching

    def _best_error(self, value: Any, types: list[str], errors: list[ApiError]) -> ApiError | None:
        """For a union of objects, report the error of the variant the value resembles most."""
        if not isinstance(value, dict):
            return None
        scored = []
        for candidate, error in zip(types, errors):
            spec = self.types.get(candidate)
            names = {f["name"] for f in spec.get("fields", [])} if spec else set()
            scored.append((len(names & set(value)), error))
        scored.sort(key=lambda item: -item[0])
        return scored[0][1] if scored and scored[0][0] > 0 else None

    def _check_one(self, value: Any, type_name: str, path: str, depth: int) -> Any:
        if type_name.startswith(_ARRAY):
            if not isinstance(value, list):
                raise bad_request(f'parameter "{path}" must be {type_name}, got {_kind(value)}')
            inner = type_name[len(_ARRAY):]
            return [self.check_value(v, [inner], f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        if type_name == "Integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif type_name == "Float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return value
        elif type_name == "Boolean":
            if isinstance(value, bool):
                return value
        elif type_name == "String":
            if isinstance(value, str):
                return value
        elif type_name == "InputFile":
            if isinstance(value, Upload):
                return value
        elif type_name in self.types:
            return self._check_object(value, type_name, path, depth)
        else:
            return value  # a type the spec does not describe: nothing to check against
        raise bad_request(f'parameter "{path}" must be {type_name}, got {_kind(value)}')

    def _check_object(self, value: Any, type_name: str, path: str, depth: int) -> Any:
        spec = self.types[type_name]
        if "subtypes" in spec:
            return self.check_value(value, spec["subtypes"], path, depth)
        if not isinstance(value, dict):
            raise bad_request(f'parameter "{path}" must be {type_name}, got {_kind(value)}')
        if depth >= MAX_DEPTH:
            return value
        fields = {f["name"]: f for f in spec.get("fields", [])}
        for key in value:
            if key not in fields:
                raise bad_request(f'unknown field "{path}.{key}" for {type_name}')
        for key, fspec in fields.items():
            if fspec["required"] and key not in value:
                raise bad_request(f'field "{path}.{key}" is required for {type_name}')
            if key in value:
                self.check_value(value[key], fspec["types"], f"{path}.{key}", depth + 1)
                literal = _literal(fspec)
                if literal is not None and value[key] != literal:
                    raise bad_request(f'field "{path}.{key}" must be "{literal}" for {type_name}')
        return value


def _literal(fspec: dict[str, Any]) -> str | None:
    """The fixed value of a discriminator field ("Type of the media, must be photo")."""
    if fspec["name"] not in {"type", "status", "source"} or fspec["types"] != ["String"]:
        return None
    match = _MUST_BE.search(fspec.get("description", ""))
    return match.group(1) if match else None


def _from_string(name: str, value: str, types: list[str]) -> Any:
    """Decode a form value the way the official server reads it."""
    if "Integer" in types and "String" in types and re.fullmatch(r"-?\d+", value):
        return int(value)  # chat_id "42" and 42 are the same chat
    if "String" in types or "InputFile" in types:
        return value
    if types == ["Integer"] or types == ["Float"]:
        try:
            return int(value) if types == ["Integer"] else float(value)
        except ValueError:
            raise bad_request(f'parameter "{name}" must be {types[0]}, got {value!r}') from None
    if types == ["Boolean"]:
        lowered = value.lower()
        if lowered in {"true", "1"}:
            return True
        if lowered in {"false", "0"}:
            return False
        raise bad_request(f'parameter "{name}" must be Boolean, got {value!r}')
    try:
        return json.loads(value)
    except ValueError:
        raise bad_request(f'can\'t parse parameter "{name}": not valid JSON') from None


def _describe(types: list[str]) -> str:
    return " or ".join(types)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, Upload):
        return "InputFile"
    return type(value).__name__
