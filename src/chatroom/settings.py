"""How a setting is declared, checked and listed: ``Setting``, ``setting()``, the registry.

``config.Config`` is the table made of these; cli.py turns each entry into a
click option, ``Config.__post_init__`` checks each value with ``Setting.check``
and tests/test_docs.py requires a section of docs/configuration.md for each.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from typing import Any


class ConfigError(ValueError):
    """A setting has a value chatroom cannot run with."""


def comma_list(text: str) -> tuple[str, ...]:
    """``"a, b,,c"`` -> ``("a", "b", "c")``: how a list setting is written on the command line."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Setting:
    """One field of ``Config`` as the registry knows it: how it is set, shown and checked.

    ``chatroom serve`` makes one option per setting from this (cli.py), named
    ``--<name>`` and read from ``CHATROOM_<NAME>``; ``Config`` checks the range
    and the choices here, so the command line, the environment and tests get the
    same one-line error.
    """

    help: str
    #: The smallest and largest allowed number (``min_open``: ``min`` itself is not).
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    #: The allowed values, or a function that lists them.
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    #: Turns the command line's (or environment's) text into the value, e.g. ``comma_list``.
    parse: Callable[[str], Any] | None = None
    #: What ``--help`` shows as the default when the default itself would not say it.
    show_default: str | None = None
    #: Filled in by ``settings()``: the field's name, type and default (for a default
    #: computed at run time, such as ``data_dir``'s, the function that computes it).
    name: str = ""
    type: Any = None
    default: Any = None

    @property
    def env_var(self) -> str:
        return f"CHATROOM_{self.name.upper()}"

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allowed(self) -> tuple[str, ...]:
        return self.choices() if callable(self.choices) else self.choices

    def check(self, value: Any) -> None:
        """Raise ``ConfigError`` (one line, naming the setting) unless ``value`` is allowed."""
        if value is None:  # an optional setting left unset
            return
        allowed = self.allowed()
        if allowed and value not in allowed:
            raise ConfigError(f"{self.name} must be one of {', '.join(allowed)}, not {value!r}")
        low, high = self.min, self.max
        too_low = low is not None and (value <= low if self.min_open else value < low)
        if too_low or (high is not None and value > high):
            if low is not None and high is not None:
                wanted = (
                    f"more than {low} and at most {high}" if self.min_open else f"{low}..{high}"
                )
            elif low is not None:
                wanted = f"more than {low}" if self.min_open else f"at least {low}"
            else:
                wanted = f"at most {high}"
            raise ConfigError(f"{self.name} must be {wanted}, not {value}")


def setting(default: Any = MISSING, *, default_factory: Any = MISSING, **how: Any) -> Any:
    """A ``Config`` field with its registry entry: ``setting(8888, help=..., min=1)``."""
    metadata = {"setting": Setting(**how)}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def _without_none(hint: Any) -> Any:
    """``int | None`` -> ``int``: an optional setting is set as its type, or left unset."""
    kinds = typing.get_args(hint)
    if type(None) in kinds and len(kinds) == 2:
        return next(kind for kind in kinds if kind is not type(None))
    return hint


@functools.cache
def registry_of(table: type) -> tuple[Setting, ...]:
    """Every field's ``Setting`` of a dataclass made of ``setting(...)``s, in field order."""
    types = typing.get_type_hints(table)
    return tuple(
        dataclasses.replace(
            f.metadata["setting"],
            name=f.name,
            type=_without_none(types[f.name]),
            default=f.default_factory if f.default is MISSING else f.default,
        )
        for f in dataclasses.fields(table)
    )
