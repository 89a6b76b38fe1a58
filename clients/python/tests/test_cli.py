"""Unit tests of herald._cli: `herald run` with `kopf run`'s options."""

import json
import logging

import pytest

import herald
from herald import _cli


@pytest.fixture
def no_serving(monkeypatch, tmp_path):
    """`herald run` that loads a module and returns instead of serving."""
    reg = herald.Registry()
    monkeypatch.setattr(herald.registry, "_default", reg)
    started = []

    class FakeOperator:
        def __init__(self, **kwargs):
            started.append(kwargs)

        def stop(self):
            pass

        async def run(self):
            return None

    monkeypatch.setattr(_cli, "Operator", FakeOperator)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    path = tmp_path / "ops.py"
    path.write_text("import herald as kopf\n"
                    "@kopf.on.create('kopfexamples')\n"
                    "def fn(**_): pass\n")
    yield path, started, reg
    root.handlers[:] = handlers
    root.setLevel(level)


def test_kopf_run_options_are_accepted(no_serving, caplog):
    path, started, reg = no_serving
    with caplog.at_level(logging.WARNING, "herald"):
        _cli.main(["run", str(path), "-n", "ns1", "--namespace", "ns2", "-A", "--standalone",
                   "-P", "peers", "-p", "100", "-L", "http://0.0.0.0:8080/healthz",
                   "--dev", "-q", "--log-format", "plain", "--no-log-prefix"])
    assert [h.id for h in reg.handlers] == ["fn"] and len(started) == 1
    warned = " ".join(r.getMessage() for r in caplog.records)
    for option in ("-n/--namespace", "-A/--all-namespaces", "--standalone", "--dev",
                   "-P/--peering", "-p/--priority", "-L/--liveness"):
        assert f"herald run {option}:" in warned
    assert "--health_listen" in warned and logging.getLogger().level == logging.WARNING


def test_without_kopfs_options_nothing_is_warned(no_serving, caplog):
    path, started, _ = no_serving
    with caplog.at_level(logging.WARNING, "herald"):
        _cli.main(["run", str(path), "--debug"])
    assert not [r for r in caplog.records if "decides this" in r.getMessage()]
    assert logging.getLogger().level == logging.DEBUG


def test_log_format_json_writes_a_json_object_per_line(no_serving, capsys):
    path, started, _ = no_serving
    _cli.main(["run", str(path), "--log-format", "json"])
    logging.getLogger("herald.handlers.fn").info("one %s", "line")
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert lines and all(set(x) >= {"time", "level", "logger", "message"} for x in lines)
    assert lines[-1]["message"] == "one line" and lines[-1]["logger"] == "herald.handlers.fn"


def test_log_format_takes_kopfs_choices_only(no_serving, capsys):
    path, _, _ = no_serving
    with pytest.raises(SystemExit) as e:
        _cli.main(["run", str(path), "--log-format", "xml"])
    assert e.value.code == 2
    assert "--log-format: invalid choice: 'xml' (choose from" in capsys.readouterr().err
