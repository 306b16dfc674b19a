"""Reading a JSON document that buildkit wrote, by key and typed (a build record, a report).

:class:`JsonObject` wraps one parsed JSON object: each getter checks the type of its key's value and, when it
is wrong, raises :class:`JsonShapeError` naming the key's path (``steps[0].env.CC is a number, not a
string``); :meth:`JsonObject.done` refuses the keys no getter asked for. With ``require_all`` a key is
missing unless its getter says ``optional=True``; without, a missing key gives the getter's empty value (a
document of an older version, written before the key existed).
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["JsonObject", "JsonShapeError", "kind_of"]

T = TypeVar("T")


class JsonShapeError(ValueError):
    """A value of the wrong type, a key missing or unknown: the message names the key's path; ``fix``, if the
    reader has a better one than its own."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.fix = fix


def kind_of(value: object) -> str:
    """What a parsed JSON value is, for messages: ``an object``, ``a list``, ``null``..."""
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


class JsonObject:
    def __init__(self, data: object, where: str = "", require_all: bool = False) -> None:
        if not isinstance(data, dict):
            raise JsonShapeError(f"{where or 'the document'} is {kind_of(data)}, not an object")
        self.data: dict[str, object] = data
        self.where, self.require_all = where, require_all
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, optional: bool) -> tuple[bool, object]:
        if key not in self.data:
            if self.require_all and not optional:
                raise JsonShapeError(f"{self.path(key)} is missing")
            return False, None
        self.seen.add(key)
        return True, self.data[key]

    def _wrong(self, key: str, value: object, want: str) -> JsonShapeError:
        return JsonShapeError(f"{self.path(key)} is {kind_of(value)}, not {want}")

    def text(self, key: str, optional: bool = False) -> str:
        there, value = self._get(key, optional)
        if not there:
            return ""
        if not isinstance(value, str):
            raise self._wrong(key, value, "a string")
        return value

    def text_or_none(self, key: str, optional: bool = False) -> str | None:
        _, value = self._get(key, optional)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, value, "a string or null")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], optional: bool = False) -> str:
        value = self.text(key, optional)
        if value not in allowed:
            raise JsonShapeError(f"{self.path(key)} is {value!r}, not one of {', '.join(allowed)}")
        return value

    def flag(self, key: str, optional: bool = False) -> bool:
        there, value = self._get(key, optional)
        if not there:
            return False
        if not isinstance(value, bool):
            raise self._wrong(key, value, "true or false")
        return value

    def number(self, key: str, optional: bool = False) -> float:
        there, value = self._get(key, optional)
        if not there:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._wrong(key, value, "a number")
        return float(value)

    def integer(self, key: str, optional: bool = False) -> int:
        there, value = self._get(key, optional)
        if not there:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, value, "an integer")
        return value

    def texts(self, key: str, optional: bool = False) -> tuple[str, ...]:
        there, value = self._get(key, optional)
        if not there:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._wrong(key, value, "a list of strings")
        return tuple(value)

    def obj(self, key: str, optional: bool = False) -> JsonObject | None:
        """The object under ``key``; None when it is null (or absent and may be)."""
        _, value = self._get(key, optional)
        return JsonObject(value, self.path(key), self.require_all) if value is not None else None

    def objs(self, key: str, optional: bool = False) -> list[JsonObject]:
        there, value = self._get(key, optional)
        if not there:
            return []
        if not isinstance(value, list):
            raise self._wrong(key, value, "a list")
        return [JsonObject(v, f"{self.path(key)}[{i}]", self.require_all) for i, v in enumerate(value)]

    def strings(self, key: str, optional: bool = False) -> dict[str, str]:
        """An object of any keys whose values are strings (an environment)."""
        table = self.obj(key, optional)
        return {k: table.text(k) for k in list(table.data)} if table else {}

    def numbers(self, key: str, optional: bool = False) -> dict[str, float]:
        table = self.obj(key, optional)
        return {k: table.number(k) for k in list(table.data)} if table else {}

    def lists(self, key: str, optional: bool = False) -> dict[str, tuple[str, ...]]:
        """An object of any keys whose values are lists of strings."""
        table = self.obj(key, optional)
        return {k: table.texts(k) for k in list(table.data)} if table else {}

    def raw(self, key: str, kinds: tuple[type, ...], optional: bool = False) -> Any:
        """A value only kept and shown again (a program's facts), as it is: of one of ``kinds``, or null."""
        _, value = self._get(key, optional)
        if value is not None and not isinstance(value, kinds):
            raise self._wrong(key, value, " or ".join(kind_of(k()) for k in kinds) + " or null")
        return value

    def done(self, value: T) -> T:
        """``value`` (what was made of this object), once every key was asked for."""
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            raise JsonShapeError(f"unknown key {self.path(unknown[0])!r}")
        return value
