"""Unit tests of herald.selectors: Kopf's resource selectors as the names the
sidecar resolves."""

import pytest

import herald
from herald.selectors import resource_name


@pytest.mark.parametrize("args, kwargs, name", [
    (("kopfexamples",), {}, "kopfexamples"),
    (("kopfexamples.v1.kopf.dev",), {}, "kopfexamples.v1.kopf.dev"),
    (("KopfExample.kopf.dev",), {}, "KopfExample.kopf.dev"),
    (("kopf.dev", "kopfexamples"), {}, "kopfexamples.kopf.dev"),
    (("kopf.dev/v1", "kopfexamples"), {}, "kopfexamples.v1.kopf.dev"),
    (("v1", "pods"), {}, "pods.v1"),
    (("kopf.dev", "v1", "kopfexamples"), {}, "kopfexamples.v1.kopf.dev"),
    (("", "v1", "pods"), {}, "pods.v1"),
    ((), {"group": "kopf.dev", "version": "v1", "plural": "kopfexamples"},
     "kopfexamples.v1.kopf.dev"),
    ((), {"group": "kopf.dev", "kind": "KopfExample"}, "KopfExample.kopf.dev"),
    ((), {"singular": "kopfexample"}, "kopfexample"),
    ((), {"shortcut": "kex", "group": "kopf.dev"}, "kex.kopf.dev"),
    ((), {"group": "", "version": "v1", "plural": "pods"}, "pods.v1"),
    (("apps/v1", "deployments"), {}, "deployments.v1.apps"),
])
def test_kopf_selectors_become_names_the_sidecar_resolves(args, kwargs, name):
    assert resource_name("create", args, **kwargs) == name


@pytest.mark.parametrize("args, kwargs, error, text", [
    ((herald.EVERYTHING,), {}, NotImplementedError, "EVERYTHING"),
    ((lambda resource: True,), {}, NotImplementedError, "a callable selector"),
    ((), {"category": "all"}, NotImplementedError, "category='all'"),
    ((), {"version": "v2", "plural": "things"}, NotImplementedError, "without group"),
    ((), {}, TypeError, "exactly one name"),
    (("kopfexamples",), {"plural": "kopfexamples"}, TypeError, "exactly one name"),
    ((), {"plural": ""}, TypeError, "non-empty"),
    (("a", "b", "c", "d"), {}, TypeError, "at most 3"),
])
def test_what_one_name_cannot_say_is_refused_naming_it(args, kwargs, error, text):
    with pytest.raises(error, match=text) as e:
        resource_name("update", args, **kwargs)
    assert "herald.on.update" in str(e.value)


def test_decorators_take_kopfs_selectors():
    reg = herald.Registry()
    herald.on.create(group="kopf.dev", version="v1", plural="kopfexamples",
                     registry=reg)(lambda **_: None)
    herald.on.update("kopf.dev/v1", "kopfexamples", id="u", registry=reg)(lambda **_: None)
    assert [h.resource for h in reg.handlers] == ["kopfexamples.v1.kopf.dev"] * 2
    with pytest.raises(NotImplementedError, match="herald.on.event"):
        herald.on.event(herald.EVERYTHING, registry=reg)
