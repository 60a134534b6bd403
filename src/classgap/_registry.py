"""A tiny name → object registry with helpful lookup errors (datasets, models, losses...)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from classgap._validation import check_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to objects; ``get`` of an unknown name lists the choices and the closest one.

    >>> models: Registry[int] = Registry("model")
    >>> @models.register("two")
    ... def two() -> int:
    ...     return 2
    >>> models.get("two")()
    2
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        check_choice(name, self.kind, self._items)
        return self._items[name]

    def list(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())
