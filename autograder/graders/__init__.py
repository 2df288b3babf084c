"""One grader module per notebook, named as the notebook (without a leading ``NN_``); each
defines ``ITEMS``, its graded items' ids (``"<module>.<item>"``) and checks. Modules are
found by name: a new notebook's grader needs no registration here."""

import pkgutil
from importlib import import_module

from autograder.graders.base import Item

NOT_GRADERS = {"base"}


def _collect() -> dict[str, Item]:
    items: dict[str, Item] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name in NOT_GRADERS or info.name.startswith("_"):
            continue
        module = import_module(f"{__name__}.{info.name}")
        for item_id, item in module.ITEMS.items():
            if not item_id.startswith(f"{info.name}."):
                raise ValueError(
                    f"{module.__name__}: item {item_id!r} must start with "
                    f"{info.name + '.'!r} (the module's name)"
                )
            items[item_id] = item
    return items


ITEMS: dict[str, Item] = _collect()

__all__ = ["ITEMS", "Item"]
