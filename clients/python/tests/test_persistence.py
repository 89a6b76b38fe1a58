"""Unit tests of herald.persistence and herald.lifecycles: Kopf's names that
the sidecar's own storage and ordering replace, kept and warned about."""

import logging
from types import SimpleNamespace

from herald import _logging
import herald
from herald import lifecycles, settings as settings_module


def test_storages_keep_kopfs_arguments():
    smart = herald.SmartProgressStorage(prefix="example.com", touch_key="t")
    assert smart.prefix == "example.com" and smart.storages[0].touch_key == "t"
    assert "'example.com'" in smart.describe()
    multi = herald.MultiDiffBaseStorage([herald.AnnotationsDiffBaseStorage(prefix="a.b"),
                                         herald.StatusDiffBaseStorage()])
    assert "'a.b'" in multi.describe() and "not supported" in multi.describe()
    assert isinstance(herald.OperatorSettings().persistence.progress_storage,
                      herald.SmartProgressStorage)


def test_changing_persistence_is_warned_once_naming_the_sidecars_flag(caplog, monkeypatch):
    monkeypatch.setattr(_logging, "_warned", set())
    with caplog.at_level(logging.WARNING, "herald"):
        s = herald.OperatorSettings()  # Kopf's defaults: nothing to warn about.
        assert not caplog.records
        for _ in range(2):
            s.persistence.progress_storage = herald.AnnotationsProgressStorage(prefix="my.org")
        s.persistence.finalizer = "my.org/finalizer"
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "'my.org'" in messages[0] and "--annotation_prefix" in messages[0]
    assert "--finalizer" in messages[1]
    assert s.persistence.finalizer == "my.org/finalizer"


def test_lifecycles_are_kopfs_and_setting_one_is_warned_once(caplog, monkeypatch):
    monkeypatch.setattr(_logging, "_warned", set())
    monkeypatch.setattr(lifecycles, "_default", lifecycles.asap)
    hs = [SimpleNamespace(id="a"), SimpleNamespace(id="b")]
    state = {"a": SimpleNamespace(retries=2), "b": SimpleNamespace(retries=0)}
    assert herald.lifecycles.asap(hs, state=state) == [hs[1]]
    assert herald.lifecycles.one_by_one(hs) == [hs[0]]
    assert herald.lifecycles.all_at_once(hs) == hs
    assert sorted(h.id for h in herald.lifecycles.shuffled(hs)) == ["a", "b"]
    assert herald.get_default_lifecycle() is herald.lifecycles.asap
    with caplog.at_level(logging.WARNING, "herald"):
        herald.set_default_lifecycle(herald.lifecycles.one_by_one)
        herald.set_default_lifecycle(herald.lifecycles.shuffled)
    assert herald.get_default_lifecycle() is herald.lifecycles.shuffled
    assert len([r for r in caplog.records if "no effect" in r.getMessage()]) == 1
