"""A tiny name → object registry with helpful lookup errors (datasets, models, losses...)."""

from __future__ import annotations

import difflib
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

    def __init__(self, kind: str, *, error: type[Exception] | None = None,
                 sort: bool = True) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._error = error  # None: InputError from check_choice
        self._sort = sort  # False: listed in registration order (presets: the default first)

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> T:
        """Register ``obj`` as ``name`` (not as a decorator)."""
        if name in self._items:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def get(self, name: str) -> T:
        if self._error is None:
            check_choice(name, self.kind, self._items)
        elif name not in self._items:
            close = difflib.get_close_matches(str(name), list(self._items), n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self._error(f"unknown {self.kind} {name!r}; valid {self.kind}s: "
                              f"{', '.join(self.list())}{hint}")
        return self._items[name]

    def list(self) -> list[str]:
        return sorted(self._items) if self._sort else list(self._items)

    def choices(self, extra: tuple[str, ...] = ()) -> str:
        """The names for a help text: ``"a, b or c"`` (``extra`` names first)."""
        names = [*extra, *self.list()]
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        return len(self._items)
