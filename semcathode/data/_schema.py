"""Class taxonomy of NCM cathode micrographs: composition x aging state.

The default schema is the paper's nine classes (NCM333/622/811 x pristine/formation/cycled).
Folder names are parsed in both the ``NCM333_pristine`` style and the upstream KAIST layout
(``333``, ``333_formation``, ``333_cycled``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["Schema", "DEFAULT_COMPOSITIONS", "DEFAULT_STATES", "STATE_ALIASES", "default_schema"]

DEFAULT_COMPOSITIONS: tuple[str, ...] = ("NCM333", "NCM622", "NCM811")
DEFAULT_STATES: tuple[str, ...] = ("pristine", "formation", "cycled")

#: Spellings seen in folder names, mapped to the canonical state.
STATE_ALIASES: dict[str, str] = {
    "": "pristine",
    "pristine": "pristine",
    "fresh": "pristine",
    "formation": "formation",
    "formed": "formation",
    "formationaged": "formation",
    "cycled": "cycled",
    "cycle": "cycled",
    "100cycles": "cycled",
    "100cycle": "cycled",
    "cycled100": "cycled",
}

_NAME = re.compile(r"^(?:ncm)?[_\- ]?(\d{3})(?:[_\- ]+(.*))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Schema:
    """Which compositions and states make up the classes, in a fixed order.

    Parameters
    ----------
    compositions : tuple of str
        Composition names such as ``"NCM333"``; their order fixes the class order.
    states : tuple of str
        Aging states, canonical spelling.
    extra_compositions : tuple of str
        Compositions that are recognised (e.g. ``"NCM523"``) but are not part of the
        classifier's classes unless listed in ``compositions``.
    """

    compositions: tuple[str, ...] = DEFAULT_COMPOSITIONS
    states: tuple[str, ...] = DEFAULT_STATES
    extra_compositions: tuple[str, ...] = ("NCM523",)
    aliases: dict[str, str] = field(default_factory=lambda: dict(STATE_ALIASES))

    @property
    def classes(self) -> list[str]:
        """Class labels ``<composition>_<state>`` in schema order."""
        return [f"{c}_{s}" for c in self.compositions for s in self.states]

    @property
    def known_compositions(self) -> tuple[str, ...]:
        return tuple(self.compositions) + tuple(
            c for c in self.extra_compositions if c not in self.compositions
        )

    def parse(self, name: str) -> tuple[str, str] | None:
        """Parse a folder name into ``(composition, state)``.

        Parameters
        ----------
        name : str
            Folder name, e.g. ``"NCM811_cycled"`` or ``"333_formation"`` or ``"622"``.

        Returns
        -------
        tuple of (str, str) or None
            ``None`` when the name is not a label of this schema (unknown composition
            or state).
        """
        m = _NAME.match(name.strip())
        if not m:
            return None
        comp = f"NCM{m.group(1)}"
        key = re.sub(r"[^a-z0-9]", "", (m.group(2) or "").lower())
        state = self.aliases.get(key)
        if state is None or state not in self.states or comp not in self.known_compositions:
            return None
        return comp, state

    def label(self, composition: str, state: str) -> str:
        """Canonical class label for a composition and state.

        Parameters
        ----------
        composition : str
            E.g. ``"NCM811"``.
        state : str
            E.g. ``"cycled"``.

        Returns
        -------
        str
            ``"<composition>_<state>"``.
        """
        return f"{composition}_{state}"

    def to_dict(self) -> dict:
        """The schema as plain lists (JSON/YAML friendly).

        Returns
        -------
        dict
            ``compositions``, ``states`` and ``extra_compositions``.
        """
        return {
            "compositions": list(self.compositions),
            "states": list(self.states),
            "extra_compositions": list(self.extra_compositions),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        """Inverse of :meth:`to_dict`; missing keys take the defaults.

        Parameters
        ----------
        d : dict
            From :meth:`to_dict`.

        Returns
        -------
        Schema
            The schema.
        """
        return cls(
            compositions=tuple(d.get("compositions", DEFAULT_COMPOSITIONS)),
            states=tuple(d.get("states", DEFAULT_STATES)),
            extra_compositions=tuple(d.get("extra_compositions", ("NCM523",))),
        )


def default_schema() -> Schema:
    """The paper's nine-class schema (NCM523 recognised but not a class).

    Returns
    -------
    Schema
        ``Schema()``.
    """
    return Schema()
