"""Category names: an export's, mapped by name onto the ones the workspace fixed.

Tools number categories differently (CVAT from 1 in the project's label order, Label Studio
from 0 in name order, Roboflow from 1 after a root category 0), and a project's numbering can
change between exports, so the categories of an export are matched by **name**; their order is
the first round's. The set only grows: a name the workspace does not know yet is appended (a
class first labeled in a later round), while a name that disappears (removed or renamed) is
refused with one message: the earlier rounds' labels would no longer mean the same.

An export lists either every category of the project (COCO's ``categories``, a CVAT
``labelmap.txt``, class folders: *complete*) or only the names its labels use (VOC XML files or
a CSV without a label list): the latter may use fewer names than the workspace holds.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from active_learning.errors import DataError


def changed_categories(source: str, found: Iterable[str], expected: Sequence[str]) -> DataError:
    """The one message for an export whose category set differs from the workspace's."""
    found = set(found)
    added = sorted(found - set(expected))
    removed = sorted(set(expected) - found)
    change = "; ".join(part for part in (f"new: {', '.join(added)}" if added else "",
                                         f"gone: {', '.join(removed)}" if removed else "") if part)
    return DataError(f"{source}: the categories changed since the first round ({change}); a "
                     "class may be added but not removed or renamed: restore the category "
                     "names in the tool, or start a new --workspace")


def match_categories(found: Sequence[str], expected: Sequence[str] | None, source: str, *,
                     complete: bool) -> list[str]:
    """The category names (in order) the labels use: ``expected`` (the workspace's) when
    given, followed by the names of ``found`` it lacks (in ``found``'s order); ``found`` itself
    in a first round.

    ``complete``: ``found`` lists every category of the project (each of ``expected`` must be
    in it: one missing was removed or renamed); otherwise it lists those the labels use.
    """
    duplicated = sorted({name for name in found if list(found).count(name) > 1})
    if duplicated:
        raise DataError(f"{source}: category {duplicated[0]!r} is listed twice; categories are "
                        "matched by name, so each name must be unique")
    if expected is None:
        return list(found)
    if complete and not set(expected) <= set(found):
        raise changed_categories(source, found, expected)
    return list(expected) + [name for name in found if name not in expected]


def drop_grouping_categories(categories: Sequence[dict[str, Any]],
                             used_ids: set[int]) -> list[dict[str, Any]]:
    """COCO categories without Roboflow's root: a category that other categories name as their
    ``supercategory`` and that no annotation uses. Roboflow's COCO export prepends one (id 0,
    named after the project; roboflow/rf-detr#1303 "drop unannotated grouping categories"), and
    it is no class. An annotated parent, or a flat list, is kept whole."""
    parents = {category.get("supercategory") for category in categories}
    return [category for category in categories
            if not (category.get("name") in parents
                    and category.get("id") not in used_ids
                    and any(other is not category and other.get("supercategory")
                            == category.get("name") for other in categories))]
