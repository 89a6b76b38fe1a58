"""Unit tests of herald.settings: Kopf's OperatorSettings (same fields and
defaults as the pinned Kopf), configure() and LogFormat."""

import dataclasses
import datetime
import io
import json
import logging
import re

import kopf
import pytest

import herald
from herald._logging import ObjectLogger
from herald.settings import DEFAULT_BACKOFF, _ConfiguredHandler, _JsonFormatter

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


def test_log_formats_are_kopfs():
    assert [f.name for f in herald.LogFormat] == [f.name for f in kopf.LogFormat]
    assert herald.LogFormat.FULL.value == kopf.LogFormat.FULL.value


def _json_lines(log, formatter=None):
    """What `log` (a function of a logger) writes through a JSON handler,
    each line parsed; fails unless every line is JSON."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter or _JsonFormatter())
    base = logging.getLogger("herald.handlers.json_test")
    base.addHandler(handler)
    base.setLevel(1)
    try:
        log(base)
    finally:
        base.removeHandler(handler)
    text = stream.getvalue()
    assert text.isascii(), text
    return [json.loads(line) for line in text.splitlines()]


_CONTEXT = {"namespace": "default", "name": "kex-1", "resource": "kopfexamples.v1.kopf.dev",
            "id": "create_fn"}


def test_json_lines_have_the_sidecars_keys_and_the_object_apart_from_the_message():
    before = datetime.datetime.now(datetime.timezone.utc)
    lines = _json_lines(lambda base: (
        ObjectLogger(base, "default/kex-1", None, context=_CONTEXT).warning("slow %d", 3),
        base.info("no object")))
    about, plain = lines
    assert list(about) == ["time", "level", "logger", "message", "namespace", "name", "resource",
                           "id"]
    assert about["message"] == "slow 3" and about["level"] == "warning"
    assert about["logger"] == "herald.handlers.json_test"
    assert {k: about[k] for k in _CONTEXT} == _CONTEXT
    assert plain == {"time": plain["time"], "level": "info",
                     "logger": "herald.handlers.json_test", "message": "no object"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", about["time"])
    when = datetime.datetime.strptime(about["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs((when - before).total_seconds()) < 60


def test_json_levels_are_the_sidecars_words():
    lines = _json_lines(lambda base: [base.log(level, "m") for level in
                                      (5, logging.DEBUG, logging.INFO, logging.WARNING,
                                       logging.ERROR, logging.CRITICAL)])
    assert [x["level"] for x in lines] == ["debug", "debug", "info", "warning", "error",
                                           "critical"]


def test_json_lines_hold_any_message_on_one_line():
    nasty = 'say "hi"\\ \n second\r\t\x01\x1b[31m \u00fc \u2713 ' + b"\xff\xfe".decode(
        "utf-8", "surrogateescape")
    lines = _json_lines(lambda base: (
        base.error(nasty), base.info("%s and %r", b"\x00", object)))
    assert len(lines) == 2
    # Valid text survives; bytes that were not UTF-8 become U+FFFD.
    assert lines[0]["message"] == 'say "hi"\\ \n second\r\t\x01\x1b[31m \u00fc \u2713 \ufffd\ufffd'
    assert lines[1]["message"] == "b'\\x00' and <class 'object'>"


def test_json_lines_carry_tracebacks_and_kopfs_refkey():
    def log(base):
        try:
            raise ValueError("boom")
        except ValueError:
            ObjectLogger(base, "default/kex-1", None, context=_CONTEXT).exception("failed")
    [line] = _json_lines(log, _JsonFormatter(refkey="object"))
    assert line["message"] == "failed" and line["level"] == "error"
    assert "ValueError: boom" in line["exc_info"]
    assert line["object"] == {"namespace": "default", "name": "kex-1",
                              "resource": "kopfexamples.v1.kopf.dev"}


def test_configure_json_is_what_embedded_operators_use(root_logging, capsys):
    herald.configure(log_format=herald.LogFormat.JSON)
    ObjectLogger(logging.getLogger("herald.handlers.embedded"), "default/kex-1", None,
                 context=_CONTEXT).info("handled")
    [line] = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert line["message"] == "handled" and line["id"] == "create_fn"
