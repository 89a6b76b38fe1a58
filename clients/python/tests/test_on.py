"""Unit tests of herald.on and herald.registry: Kopf's decorators, their
keyword arguments, and functions with several decorators."""

import logging

import pytest

from herald import _logging
import herald
from herald import on
from herald.runtime import handler_spec
from herald.v1 import handler_pb2 as pb
from herald.v1 import resource_pb2


def test_stacked_decorators_get_kopfs_id_first_and_a_cause_suffix_after():
    reg = herald.Registry()

    @herald.on.resume("kopfexamples", registry=reg)
    @herald.on.create("kopfexamples", registry=reg)
    @herald.on.update("kopfexamples", field="spec.size", registry=reg)
    def fn(**_):
        pass

    q = fn.__qualname__
    assert [(h.id, h.cause, h.kopf_id, h.result_key) for h in reg.handlers] == [
        (f"{q}/spec.size", "CAUSE_UPDATE", "", f"{q}/spec.size"),
        (q, "CAUSE_CREATE", "", q),
        (f"{q}/resume", "CAUSE_RESUME", q, q)]
    assert handler_spec(reg.get(f"{q}/resume")).cause == resource_pb2.CAUSE_RESUME
    # The same function twice for one cause stays an error, as does another
    # function under a taken id.
    with pytest.raises(ValueError, match="already registered"):
        herald.on.create("kopfexamples", registry=reg)(fn)
    with pytest.raises(ValueError, match="already registered"):
        herald.on.delete("kopfexamples", id=q, registry=reg)(lambda **_: None)


def test_kopfs_keyword_arguments_reach_the_handler_spec():
    reg = herald.Registry()
    herald.on.resume("kopfexamples", id="r", param={"p": 1}, field="spec.size", value=5,
                     registry=reg)(lambda **_: None)
    herald.on.delete("kopfexamples", id="d", field="spec.size", value=herald.PRESENT,
                     retries=2, registry=reg)(lambda **_: None)
    herald.on.daemon("kopfexamples", id="dm", field="spec.run", value=True,
                     cancellation_polling=5, registry=reg)(lambda **_: None)
    herald.on.timer("kopfexamples", id="t", interval=1, field="spec.run",
                    timeout=3, retries=4, registry=reg)(lambda **_: None)
    herald.on.update("kopfexamples", id="u", field="spec.size",
                     value=lambda v, **_: v > 1, new=3, registry=reg)(lambda **_: None)
    r = handler_spec(reg.get("r/spec.size"))
    assert reg.get("r/spec.size").param == {"p": 1}
    assert r.field == "spec.size" and r.value_filter.value_json == "5" and not r.has_when
    d = handler_spec(reg.get("d/spec.size"))
    assert d.field == "spec.size" and d.value_filter.match == pb.VALUE_MATCH_PRESENT
    # Daemons and timers are filtered by field in the client.
    for hid in ("dm/spec.run", "t/spec.run"):
        s = handler_spec(reg.get(hid))
        assert s.field == "" and s.value_filter.match == pb.VALUE_MATCH_UNSPECIFIED
        assert s.has_when
    assert handler_spec(reg.get("t/spec.run")).retries == 4
    # A callable value stays in the client; plain ones still go.
    u = handler_spec(reg.get("u/spec.size"))
    assert u.value_filter.match == pb.VALUE_MATCH_UNSPECIFIED and u.has_when
    assert u.new_filter.value_json == "3"


def test_login_handlers_are_accepted_never_registered_and_warned_once(caplog, monkeypatch):
    monkeypatch.setattr(_logging, "_warned", set())
    reg = herald.Registry()
    with caplog.at_level(logging.WARNING, "herald"):
        for _ in range(2):
            @herald.on.login(registry=reg)
            def login_fn(**_):
                return herald.login_via_client(logger=None, settings=None)
    assert reg.handlers == [] and login_fn() is None
    warnings = [r for r in caplog.records if "authenticates" in r.getMessage()]
    assert len(warnings) == 1


def test_resume_of_deleted_objects_is_warned_once(caplog, monkeypatch):
    monkeypatch.setattr(_logging, "_warned", set())
    reg = herald.Registry()
    with caplog.at_level(logging.WARNING, "herald"):
        herald.on.resume("kopfexamples", id="a", deleted=True, registry=reg)(lambda **_: None)
        herald.on.resume("kopfexamples", id="b", deleted=True, registry=reg)(lambda **_: None)
    assert len([r for r in caplog.records if "deleted=True" in r.getMessage()]) == 1
    assert [h.id for h in reg.handlers] == ["a", "b"]


def test_activities_take_kopfs_options():
    reg = herald.Registry()
    herald.on.startup(id="s", param="x", errors=herald.ErrorsMode.PERMANENT, retries=2,
                      registry=reg)(lambda **_: None)
    herald.on.cleanup(id="c", timeout=5, registry=reg)(lambda **_: None)
    s = handler_spec(reg.get("s"))
    assert s.errors == pb.ERRORS_MODE_PERMANENT and s.retries == 2
    assert reg.get("s").param == "x" and handler_spec(reg.get("c")).timeout.seconds == 5
    with pytest.raises(TypeError, match="interval"):
        herald.on.timer("kopfexamples")
