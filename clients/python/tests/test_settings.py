"""Unit tests of herald.settings: Kopf's OperatorSettings (same fields and
defaults as the pinned Kopf), configure() and LogFormat."""

import dataclasses
import logging

import kopf
import pytest

import herald
from herald.settings import DEFAULT_BACKOFF, _ConfiguredHandler

# Objects, not values: compared by type only.
_OBJECTS = {("execution", "executor"), ("persistence", "progress_storage"),
            ("persistence", "diffbase_storage"), ("watching", "label_selectors"),
            ("watching", "field_selectors"), ("watching", "shard_selectors")}


def test_every_section_and_default_is_kopfs():
    ours, theirs = herald.OperatorSettings(), kopf.OperatorSettings()
    for section in dataclasses.fields(theirs):
        mine, kopfs = getattr(ours, section.name), getattr(theirs, section.name)
        for f in dataclasses.fields(kopfs):
            name = f.name.lstrip("_")
            if (section.name, name) in _OBJECTS:
                continue
            assert getattr(mine, name) == getattr(kopfs, f.name), f"{section.name}.{name}"
    assert ours.peering.namespaced and DEFAULT_BACKOFF == theirs.execution.default_backoff


def test_posting_and_retry_delay_as_herald_reads_them():
    s = herald.OperatorSettings()
    assert s.posting_level() == logging.INFO and s.retry_delay() is None
    s.posting.level = logging.WARNING
    s.execution.default_backoff = 5
    assert s.posting_level() == logging.WARNING and s.retry_delay() == 5.0
    s.posting.enabled = False
    assert s.posting_level() is None
    assert herald.OperatorSettings().execution.executor is herald.get_executor()


@pytest.fixture
def root_logging():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_sets_kopfs_levels_and_formats(root_logging):
    herald.configure(verbose=True)
    assert root_logging.level == logging.DEBUG
    herald.configure(quiet=True, log_format=herald.LogFormat.PLAIN)
    ours = [h for h in root_logging.handlers if isinstance(h, _ConfiguredHandler)]
    assert root_logging.level == logging.WARNING and len(ours) == 1
    record = logging.LogRecord("x", logging.INFO, "f", 1, "hello %s", ("you",), None)
    assert ours[0].format(record) == "hello you"
    herald.configure(log_format=herald.LogFormat.JSON)
    ours = [h for h in root_logging.handlers if isinstance(h, _ConfiguredHandler)]
    assert '"message": "hello you"' in ours[0].format(record)
    assert root_logging.level == logging.INFO
    with pytest.raises(ValueError, match="unsupported log format"):
        herald.configure(log_format=3)
