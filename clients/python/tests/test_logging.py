"""Unit tests of herald._logging: the per-object logger handlers get."""

import logging

from herald._logging import ObjectLogger


def _logger(level=logging.INFO):
    return ObjectLogger(logging.getLogger("herald.handlers.test"), "ns/x", level)


def test_lines_are_prefixed_with_the_object(caplog):
    caplog.set_level(logging.DEBUG, logger="herald.handlers.test")
    log = _logger()
    log.info("made %s of %d", "pods", 3)
    log.debug("detail")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("herald.handlers.test", logging.INFO, "[ns/x] made pods of 3"),
        ("herald.handlers.test", logging.DEBUG, "[ns/x] detail")]


def test_records_at_the_posting_level_become_events():
    log = _logger(logging.INFO)
    log.debug("not posted")
    log.info("made %s", "pods")
    log.warning("careful")
    log.error("broken")
    log.log(logging.CRITICAL, "%d%%", 100)
    # Events carry the message without the object prefix (they are about it).
    assert log.events == [("NORMAL", "Info", "made pods"), ("WARNING", "Warning", "careful"),
                          ("WARNING", "Error", "broken"), ("WARNING", "Critical", "100%")]


def test_exceptions_are_posted_with_their_message():
    log = _logger(logging.WARNING)
    log.info("below the level")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("handler %s failed", "h")
    assert log.events == [("WARNING", "Error", "handler h failed")]


def test_no_posting_level_posts_nothing_but_still_logs(caplog):
    caplog.set_level(logging.INFO, logger="herald.handlers.test")
    log = _logger(None)
    log.error("logged only")
    assert log.events == []
    assert [r.getMessage() for r in caplog.records] == ["[ns/x] logged only"]


def test_taking_events_leaves_none_behind():
    log = _logger()
    log.info("one")
    taken = log.take_events()
    log.info("two")
    assert taken == [("NORMAL", "Info", "one")]
    assert log.take_events() == [("NORMAL", "Info", "two")] and log.events == []


def test_records_carry_the_objects_context_and_its_prefix(caplog):
    caplog.set_level(logging.INFO, logger="herald.handlers.test")
    context = {"namespace": "ns", "name": "x", "resource": "kopfexamples.v1.kopf.dev",
               "id": "create_fn"}
    log = ObjectLogger(logging.getLogger("herald.handlers.test"), "ns/x", None, context=context)
    log.info("made %s", "pods", extra={"mine": 1})
    log.logger.info("[%s] direct", log.key, extra=log.record_extra(id="create_fn/sub"))
    first, second = caplog.records
    assert first.herald_context == {**context, "prefix": "[ns/x] "} and first.mine == 1
    assert second.herald_context == {**context, "id": "create_fn/sub", "prefix": "[ns/x] "}


def test_kopfs_constructor_takes_the_context_from_the_body():
    log = ObjectLogger(body={"metadata": {"namespace": "ns", "name": "x"}})
    assert log.key == "ns/x" and log.context == {"namespace": "ns", "name": "x"}
