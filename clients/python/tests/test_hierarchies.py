"""Unit tests of herald.hierarchies: Kopf's owner, name, namespace and label
helpers, with the owner taken from the running handler's object."""

import asyncio

import pytest

import herald
from herald._execution import call_handler

OWNER = {"apiVersion": "kopf.dev/v1", "kind": "KopfExample",
         "metadata": {"name": "ex", "namespace": "ns", "uid": "u1",
                      "labels": {"app": "demo", "tier": "web"}}}


def test_references_leave_out_what_is_empty():
    assert herald.build_object_reference(OWNER) == {
        "apiVersion": "kopf.dev/v1", "kind": "KopfExample", "name": "ex", "uid": "u1",
        "namespace": "ns"}
    assert herald.build_owner_reference(OWNER, block_owner_deletion=None) == {
        "controller": True, "apiVersion": "kopf.dev/v1", "kind": "KopfExample",
        "name": "ex", "uid": "u1"}


def test_adopt_names_places_labels_and_owns_as_kopf():
    child = {"metadata": {"labels": {"tier": "db"}}, "spec": {"template": {}}}
    herald.adopt(child, OWNER, nested="spec.template")
    meta = child["metadata"]
    assert meta["ownerReferences"] == [herald.build_owner_reference(OWNER)]
    assert meta["generateName"] == "ex-" and meta["namespace"] == "ns"
    assert meta["labels"] == {"tier": "db", "app": "demo"}  # Kept unless forced.
    assert child["spec"]["template"]["metadata"]["labels"] == {"app": "demo", "tier": "web"}
    named = {"metadata": {"name": "mine", "namespace": "other"}}
    herald.adopt([named], OWNER, forced=True, strict=True)
    assert named["metadata"]["name"] == "ex" and named["metadata"]["namespace"] == "ns"
    assert named["metadata"]["labels"] == {"app": "demo", "tier": "web"}


def test_owner_references_are_added_once_and_removed_by_uid():
    objs = [{"metadata": {}}, [{"metadata": {}}]]
    herald.append_owner_reference(objs, OWNER)
    herald.append_owner_reference(objs, OWNER, controller=False)
    assert [len(o["metadata"]["ownerReferences"]) for o in (objs[0], objs[1][0])] == [1, 1]
    herald.remove_owner_reference(objs, OWNER)
    assert objs[0]["metadata"]["ownerReferences"] == []


def test_naming_and_namespaces_keep_what_is_set_unless_forced():
    obj = {"metadata": {"generateName": "own-"}}
    herald.harmonize_naming(obj, "ex")
    assert obj["metadata"] == {"generateName": "own-"}
    herald.harmonize_naming(obj, "ex", forced=True, strict=True)
    assert obj["metadata"] == {"name": "ex"}
    herald.adjust_namespace(obj, "ns")
    herald.adjust_namespace(obj, "other")
    assert obj["metadata"]["namespace"] == "ns"
    with pytest.raises(TypeError, match="not supported"):
        herald.label("a string", {"a": "b"})


def test_the_owner_is_the_handlers_object_and_required_outside_handlers():
    with pytest.raises(LookupError, match="Owner must be set explicitly"):
        herald.adopt({})

    def sync_handler(**_):  # Runs in the executor, in a copy of the context.
        child = {}
        herald.adopt(child)
        herald.label(child, {"extra": "1"})
        return child

    async def async_handler(**_):
        child = {}
        herald.adopt(child)
        return child

    for fn in (sync_handler, async_handler):
        child, _ = asyncio.run(call_handler(fn, {"body": OWNER}))
        assert child["metadata"]["ownerReferences"][0]["uid"] == "u1"
        assert child["metadata"]["labels"]["app"] == "demo"
    with pytest.raises(LookupError):
        herald.harmonize_naming({})
