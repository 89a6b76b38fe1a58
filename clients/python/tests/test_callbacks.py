"""Unit tests of herald.callbacks: Kopf's combinators."""

import herald


def test_combinators_call_the_callbacks_with_the_same_arguments():
    calls = []

    def big(value=None, *, spec, **_):
        calls.append(("big", value))
        return spec["size"] > 10

    def urgent(value=None, *, spec, **_):
        calls.append(("urgent", value))
        return spec.get("urgent", False)

    kw = {"spec": {"size": 20}, "name": "x"}
    assert herald.not_(big)(**kw) is False
    assert herald.all_([big, urgent])(**kw) is False
    assert herald.any_([urgent, big])(**kw) is True
    assert herald.none_([urgent, big])(**kw) is False
    assert herald.none_([urgent])(**kw) is True
    assert herald.any_([])(**kw) is False and herald.all_([])(**kw) is True
    calls.clear()
    herald.all_([urgent, big])(7, **kw)  # Stops at the first false.
    assert calls == [("urgent", 7)]
