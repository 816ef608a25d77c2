"""`family(name)`: a built-in toy family by name, or a user's own by import path
'package.module:Object' (an instance of `Family`, or a subclass, which is instantiated)."""

from __future__ import annotations

import functools
import importlib

from spd.config import ConfigError, TargetConfig
from spd.families.base import Family

BUILT_IN = {"tms": "spd.families.tms:TMS", "resid_mlp": "spd.families.resid_mlp:RESID_MLP"}


class FamilyImportError(ConfigError):
    """A family named by import path that cannot be imported or is not a Family."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"target.family '{name}': {detail}")
        self.detail = detail


@functools.cache
def family_named(name: str) -> Family:
    path = BUILT_IN.get(name, name)
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        known = ", ".join(f"'{known}'" for known in BUILT_IN)
        raise FamilyImportError(
            name, f"not a known family ({known}) nor an import path 'package.module:Object'"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any failure to import is the user's family's
        raise FamilyImportError(
            name, f"cannot import {module_name} ({type(error).__name__}: {error})"
        ) from None
    try:
        found = getattr(module, attribute)
    except AttributeError:
        raise FamilyImportError(
            name, f"cannot import {attribute} from {module_name}: no such name"
        ) from None
    if isinstance(found, type) and issubclass(found, Family):
        found = found()
    if not isinstance(found, Family):
        raise FamilyImportError(name, f"{path} is not a spd.families.base.Family")
    return found


def family(of: str | TargetConfig) -> Family:
    """The family of a name, or of a target config (its `family` field)."""
    return family_named(of if isinstance(of, str) else of.family)
