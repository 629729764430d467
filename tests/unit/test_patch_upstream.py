"""Strategic merge vectors from apimachinery's strategicpatch test table.

The expected documents (patches, results, list orders) are upstream's; they are checked
against a schema shaped like upstream's test struct `MergeItem`:
  mergingList (merge, key name), mergingIntList (merge), nonMergingList, nonMergingIntList,
  mergeItemPtr (merge, key name), retainKeysMap (retainKeys),
  retainKeysMergingList (merge,retainKeys, key name).
For each case: two-way patch creation and application, three-way patch creation
(kubectl apply) and its application to the live object.
"""
from __future__ import annotations

import copy
from typing import Any, Iterator

import pytest
import yaml

from netd.api import mergekeys
from netd.api.mergekeys import FieldMeta, Schema
from netd.api.smp import SERVER, merge_map
from netd.api.smpdiff import three_way_merge_patch, two_way_merge_patch

_M = FieldMeta("merge", "name", False, "MergeItem")


@pytest.fixture(autouse=True)
def merge_item_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[Schema]:
    monkeypatch.setitem(mergekeys.TYPES, "MergeItem", {
        "mergingList": _M, "mergeItemPtr": _M,
        "nonMergingList": FieldMeta(type="MergeItem"),
        "mergingIntList": FieldMeta("merge"),
        "retainKeysMap": FieldMeta("", "", True, "RetainKeysMergeItem"),
        "retainKeysMergingList": FieldMeta("merge", "name", True, "MergeItem"),
    })
    monkeypatch.setitem(mergekeys.TYPES, "RetainKeysMergeItem", {
        "mergingList": _M, "mergingIntList": FieldMeta("merge"),
        "nonMergingList": FieldMeta(type="MergeItem"),
    })
    yield Schema("MergeItem")


CASES = yaml.safe_load(r"""
- id: merge lists of maps
  original: {mergingList: [{name: 1}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  modified: {mergingList: [{name: 4, value: 4}, {name: 1}, {name: 2, value: 2}, {name: 3, value: 3}]}
  current: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  result: {mergingList: [{name: 4, value: 4}, {name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}

- id: add map and delete map from merging list
  original: {mergingList: [{name: 1}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 3}, {name: 1, $patch: delete}]
  modified: {mergingList: [{name: 2}, {name: 3}]}
  current: {mergingList: [{name: 1}, {name: 2, other: b}, {name: 4, other: c}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 3}, {name: 1, $patch: delete}]
  result: {mergingList: [{name: 2, other: b}, {name: 4, other: c}, {name: 3}]}

- id: set elements order in a list with server-only items
  original: {mergingList: [{name: 1}, {name: 3, value: 3}, {name: 4, value: 4}, {name: 2, value: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 3}, {name: 1}]
  modified: {mergingList: [{name: 4, value: 4}, {name: 2, value: 2}, {name: 3, value: 3}, {name: 1}]}
  current: {mergingList: [{name: 1, other: a}, {name: 3, value: 3}, {name: 4, value: 4}, {name: 2, value: 2}, {name: 9}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 4}, {name: 2}, {name: 3}, {name: 1}]
  result: {mergingList: [{name: 4, value: 4}, {name: 2, value: 2}, {name: 3, value: 3}, {name: 1, other: a}, {name: 9}]}

- id: delete and reorder in one list, reorder in another
  original: {mergingList: [{name: a, value: a}, {name: b, value: b}], mergeItemPtr: [{name: c, value: c}, {name: d, value: d}]}
  twoWay:
    $setElementOrder/mergingList: [{name: b}]
    $setElementOrder/mergeItemPtr: [{name: d}, {name: c}]
    mergingList: [{$patch: delete, name: a}]
  modified: {mergingList: [{name: b, value: b}], mergeItemPtr: [{name: d, value: d}, {name: c, value: c}]}
  current: {mergingList: [{name: a, value: a}, {name: b, value: b}], mergeItemPtr: [{name: c, value: c}, {name: d, value: d}]}
  threeWay:
    $setElementOrder/mergingList: [{name: b}]
    $setElementOrder/mergeItemPtr: [{name: d}, {name: c}]
    mergingList: [{$patch: delete, name: a}]
  result: {mergingList: [{name: b, value: b}], mergeItemPtr: [{name: d, value: d}, {name: c, value: c}]}

- id: delete items in lists of scalars
  original: {mergingIntList: [1, 2, 3]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2]
    $deleteFromPrimitiveList/mergingIntList: [3]
  modified: {mergingIntList: [1, 2]}
  current: {mergingIntList: [1, 2, 3, 4]}
  threeWay:
    $setElementOrder/mergingIntList: [1, 2]
    $deleteFromPrimitiveList/mergingIntList: [3]
  result: {mergingIntList: [1, 2, 4]}

- id: merge lists of scalars
  original: {mergingIntList: [1, 2]}
  twoWay:
    $setElementOrder/mergingIntList: [1, 2, 3]
    mergingIntList: [3]
  modified: {mergingIntList: [1, 2, 3]}
  current: {mergingIntList: [1, 2, 4]}
  threeWay:
    $setElementOrder/mergingIntList: [1, 2, 3]
    mergingIntList: [3]
  result: {mergingIntList: [1, 2, 3, 4]}

- id: retainKeys map should clear defaulted field
  original: {}
  twoWay: {retainKeysMap: {other: bar}}
  modified: {retainKeysMap: {other: bar}}
  current: {retainKeysMap: {value: foo}}
  threeWay: {retainKeysMap: {$retainKeys: [other], other: bar}}
  result: {retainKeysMap: {other: bar}}

- id: retainKeys list of maps clears a field
  original: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  twoWay: {}
  modified: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  current: {retainKeysMergingList: [{name: bar}, {name: foo, value: a, other: x}]}
  threeWay:
    $setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}]
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo}]
  result: {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}

- id: nested patch merge with empty list
  original: {name: hi}
  twoWay: {mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]}
  twoWayResult: {name: hi, mergingList: [{name: hello}]}
  modified: {name: hi, mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]}
  current: {name: hi, mergingList: [{name: hello2}]}
  threeWay:
    $setElementOrder/mergingList: [{name: hello}, {name: doesntexist}]
    mergingList: [{name: hello}]
  result: {name: hi, mergingList: [{name: hello}, {name: hello2}]}

- id: behavior of set element order for a merging list with duplicate
  original: {mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]
  twoWayResult: {mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]}
  modified: {mergingList: [{name: 2, value: dup1}, {name: 1}, {name: 4}, {name: 3}, {name: 2, value: dup2}]}
  current: {mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]
  result: {mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]}

- id: replace non merging list nested in merging list
  original: {mergingList: [{name: 1, nonMergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2}]}
  twoWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]
  modified: {mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}, {name: 2}]}
  current: {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2, other: b}]}
  threeWay:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]
  result: {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: 1}]}, {name: 2, other: b}]}
""")

# Cases that only apply a patch (upstream's "custom" table: patches no diff would produce).
APPLY_ONLY = yaml.safe_load(r"""
- id: unique scalars when merging lists
  original: {mergingIntList: [1, 2]}
  patch: {mergingIntList: [2, 3]}
  result: {mergingIntList: [1, 2, 3]}
- id: delete all items from merging list
  original: {mergingList: [{name: 1}, {name: 2}]}
  patch: {mergingList: [{$patch: replace}]}
  result: {mergingList: []}
- id: add key and delete all keys from map
  original: {name: 1, value: 1}
  patch: {other: a, $patch: replace}
  result: {other: a}
- id: delete all duplicate entries in a merging list
  original: {mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}, {name: 3}, {name: 3}]}
  patch: {mergingList: [{name: 1, $patch: delete}, {name: 3, $patch: delete}]}
  result: {mergingList: [{name: 2, value: a}]}
- id: retainKeys map can delete a field when no retainKeys directive present
  original: {retainKeysMap: {name: foo, value: a}}
  patch: {retainKeysMap: {value: null}}
  result: {retainKeysMap: {name: foo}}
- id: preserve the order from the patch in a merging list
  original: {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  patch: {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, other: x}]}
  result: {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, value: b, other: x}]}
- id: preserve the order from the patch in a merging list 2
  original: {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  patch: {mergingList: [{name: 3, value: c}, {name: 1, value: a}]}
  result: {mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]}
- id: preserve the order from the patch in a merging int list
  original: {mergingIntList: [1, 2, 3]}
  patch: {mergingIntList: [3, 1]}
  result: {mergingIntList: [2, 3, 1]}
- id: setElementOrder names an item missing from the list
  original: {mergingList: [{name: 1}, {name: 3}]}
  patch:
    $setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}]
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]
  result: {mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}
- id: deleteFromPrimitiveList on a list without merge strategy
  original: {nonMergingIntList: [1, 2, 3]}
  patch: {$deleteFromPrimitiveList/nonMergingIntList: [2]}
  result: {nonMergingIntList: [1, 3]}
- id: deleteFromPrimitiveList of an absent item
  original: {mergingIntList: [1, 2]}
  patch: {$deleteFromPrimitiveList/mergingIntList: [3]}
  result: {mergingIntList: [1, 2]}
""")


def _apply(doc: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    return merge_map(copy.deepcopy(doc), copy.deepcopy(patch), schema, SERVER)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_two_way(case: dict[str, Any], merge_item_schema: Schema) -> None:
    patch = two_way_merge_patch(case["original"], case["modified"], merge_item_schema)
    assert patch == case["twoWay"]
    want = case.get("twoWayResult", case["modified"])
    assert _apply(case["original"], patch, merge_item_schema) == want


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_three_way(case: dict[str, Any], merge_item_schema: Schema) -> None:
    inputs = copy.deepcopy(case)
    patch = three_way_merge_patch(case["original"], case["modified"], case["current"],
                                  merge_item_schema)
    assert patch == case["threeWay"]
    assert _apply(case["current"], patch, merge_item_schema) == case["result"]
    assert case == inputs


@pytest.mark.parametrize("case", APPLY_ONLY, ids=[c["id"] for c in APPLY_ONLY])
def test_apply(case: dict[str, Any], merge_item_schema: Schema) -> None:
    assert _apply(case["original"], case["patch"], merge_item_schema) == case["result"]
