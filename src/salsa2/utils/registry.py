"""Name -> builder registries, so a new encoder or loss is one file plus one line."""

from __future__ import annotations

from typing import Generic, TypeVar
from collections.abc import Callable, Iterator

T = TypeVar("T")


class Registry(Generic[T]):
    """A dictionary of named builders with a helpful error for unknown names.

    Usage::

        LOSSES = Registry("loss")

        @LOSSES.register("nt_xent")
        class NTXentLoss(nn.Module): ...

        LOSSES.build("nt_xent", tau=0.05)
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = builder
            return builder

        return decorator

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def build(self, name: str, /, **kwargs) -> T:
        return self.get(name)(**kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))
