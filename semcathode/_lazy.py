"""Lazy attribute loading for packages (PEP 562), in the style of scikit-image's lazy loader.

A package declares which submodule defines each public name; the submodule is imported the
first time the name is looked up, so importing a package costs almost nothing.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable

__all__ = ["attach"]


def attach(package: str, names: dict[str, str], submodules: tuple[str, ...] = ()) -> tuple[
        Callable[[str], Any], Callable[[], list[str]]]:
    """Make ``__getattr__`` and ``__dir__`` for a package whose public names load on first use.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict of str to str
        Public name -> submodule (relative to ``package``) that defines it.
    submodules : tuple of str, optional
        Subpackages or modules reachable as attributes (``package.sub``).

    Returns
    -------
    tuple
        ``(__getattr__, __dir__)`` to assign in the package's namespace.
    """
    subs = set(submodules)

    def __getattr__(name: str) -> Any:
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f".{module}", package), name)

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names) | subs)

    return __getattr__, __dir__
