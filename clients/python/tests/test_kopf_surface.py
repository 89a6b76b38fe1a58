"""Kopf's public API against herald's: every name of ``kopf.__all__``, every
decorator of ``kopf.on`` with every keyword argument it takes, and every
section and field of ``kopf.OperatorSettings``, checked against a pinned Kopf
(tests/requirements.txt) installed in the test virtualenv.

A name is covered fully when herald has it and, for functions and classes
users call, accepts every argument Kopf's accepts (same names, keyword or
positional as in Kopf). The test prints the coverage and fails on a
regression: anything not covered must be listed in NOT_YET below, and
anything listed there that is covered must be taken off the list, so that it
only shrinks.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import typing

import kopf
import pytest

import herald

KOPF_VERSION = "1.45.2"

# What herald does not cover yet, each entry a reason. Keys: a public name
# ("execute"), a decorator's keyword argument ("on.create(category)"), a
# name whose signature is not Kopf's ("operator(...)" lists the missing
# arguments as "operator(lifecycle)"), a settings field
# ("settings.peering.name").
NOT_YET: dict[str, str] = {
    # Admission webhooks: the sidecar serves no webhooks.
    **{name: "admission webhooks are not served" for name in (
        "on.mutate", "on.validate", "AdmissionError", "WebhookServer", "WebhookK3dServer",
        "WebhookMinikubeServer", "WebhookDockerDesktopServer", "WebhookNgrokTunnel",
        "WebhookAutoServer", "WebhookAutoTunnel", "WebhookClientConfig",
        "WebhookClientConfigService", "WebhookFn", "WebhookServerProtocol", "Operation",
        "UserInfo", "Headers", "SSLPeer")},
    # Imperative sub-handler execution and handler ordering within a cycle.
    "execute": "imperative sub-handlers need a delivery per call",
}

# What herald has with Kopf's signature but does differently or partly, each
# with what differs (docs/porting-from-kopf.md says more). Checked to exist;
# counted in the report.
PARTLY: dict[str, str] = {
    "event": "Events about the handler's own object only; others are dropped, warned once "
             "(EventRecord names no object)",
    "info": "as event", "warn": "as event", "exception": "as event; type Error posted as Warning",
    "on.login": "accepted, never called: the sidecar authenticates (warned once)",
    "on.resume(deleted)": "deleted=True is warned and not honoured: resume handlers do not "
                          "run for objects being deleted",
    "on.daemon(cancellation_polling)": "accepted, no effect: the sidecar pushes stop requests",
    "on.create(category)": "refused at declaration: the sidecar resolves resources by name",
    "EVERYTHING": "refused by the decorators: the sidecar resolves resources by name",
    "OperatorSettings": "posting.enabled/level and execution.default_backoff are read; the "
                        "other sections are the sidecar's flags and have no effect",
    "operator(namespaces)": "namespaces, peering and the liveness endpoint are the sidecar's "
                            "flags (warned when given)",
    "Patch(fns)": "JSON patch functions are refused when sent: merge patches only",
    "subhandler(timeout)": "the parent's timeout and retries apply to its sub-handlers",
    "ObjectLogger(body)": "Events it collects outside the handler's own logger are not posted",
    "login_via_client": "returns None: the sidecar holds the credentials",
    "set_default_lifecycle": "no effect, warned once: the sidecar orders handlers",
    "AnnotationsProgressStorage": "kept, no effect: the sidecar's --annotation_prefix decides "
                                  "(assigning one to settings.persistence is warned once)",
}


# --- what Kopf has -----------------------------------------------------------

def _kopf_decorators() -> dict[str, inspect.Signature]:
    return {name: inspect.signature(fn) for name, fn in vars(kopf.on).items()
            if inspect.isfunction(fn) and fn.__module__ == "kopf.on"
            and not name.startswith("_")}


def _settings_fields(settings: typing.Any) -> list[str]:
    """Kopf's OperatorSettings as "section.field" names (public fields and
    properties, not the private ones)."""
    out = []
    for section in dataclasses.fields(settings):
        value = getattr(settings, section.name)
        names = [f.name for f in dataclasses.fields(value) if not f.name.startswith("_")]
        names += [n for n, v in vars(type(value)).items()
                  if isinstance(v, property) and not n.startswith("_")]
        out += [f"{section.name}.{n}" for n in sorted(set(names))]
    return out


# --- how herald compares ------------------------------------------------------

def missing_arguments(kopf_sig: inspect.Signature, ours: typing.Any) -> list[str]:
    """The arguments of `kopf_sig` that `ours` does not accept the same way:
    positional-only ones need as many positional slots, the others a
    parameter of the same name that can be given by keyword. A bare
    ``**kwargs`` does not count as accepting a name."""
    try:
        sig = inspect.signature(ours)
    except (TypeError, ValueError):
        return ["(no signature)"]
    params = sig.parameters.values()
    var_pos = any(p.kind is p.VAR_POSITIONAL for p in params)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    by_name = {p.name: p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = []
    for i, p in enumerate(kopf_sig.parameters.values()):
        private = p.kind is p.POSITIONAL_OR_KEYWORD and p.name.startswith("_")
        if p.kind is p.POSITIONAL_ONLY or private:  # A private name is given by position.
            if not var_pos and i >= len(positional):
                missing.append(p.name)
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.name not in by_name:
                missing.append(p.name)
        elif p.kind is p.VAR_POSITIONAL and not var_pos:
            missing.append("*" + p.name)
    return missing


def _callable_to_check(obj: typing.Any) -> bool:
    """Functions, and classes users construct (not enums, typing constructs,
    exceptions or protocols, whose shape is checked otherwise)."""
    if inspect.isfunction(obj):
        return True
    return (inspect.isclass(obj) and not issubclass(obj, (enum.Enum, BaseException))
            and "__init__" in vars(obj) and not getattr(obj, "_is_protocol", False))


def name_coverage(name: str) -> tuple[str, list[str]]:
    """("full" | "partly" | "missing", what is missing) for one public name."""
    theirs = getattr(kopf, name)
    if not hasattr(herald, name):
        return "missing", [name]
    ours = getattr(herald, name)
    gaps: list[str] = []
    if inspect.isclass(theirs) and issubclass(theirs, BaseException):
        parents = [b.__name__ for b in theirs.__mro__[1:] if b.__module__.startswith("kopf")]
        if not (inspect.isclass(ours) and issubclass(ours, Exception)):
            gaps.append("not an exception")
        gaps += [f"not a {p}" for p in parents
                 if hasattr(herald, p) and not issubclass(ours, getattr(herald, p))]
    elif inspect.isclass(theirs) and issubclass(theirs, enum.Enum):
        gaps += [f"{name}.{m}" for m in theirs.__members__ if not hasattr(ours, m)]
    elif _callable_to_check(theirs):
        gaps += [f"{name}({a})" for a in missing_arguments(inspect.signature(theirs), ours)]
    return ("partly" if gaps else "full"), gaps


def decorator_coverage(name: str, sig: inspect.Signature) -> tuple[str, list[str]]:
    ours = getattr(herald.on, name, None)
    if ours is None:
        return "missing", [f"on.{name}"]
    gaps = [f"on.{name}({a})" for a in missing_arguments(sig, ours)]
    return ("partly" if gaps else "full"), gaps


def settings_coverage() -> tuple[list[str], list[str]]:
    """(covered, missing) "settings.section.field" names."""
    fields = _settings_fields(kopf.OperatorSettings())
    ours = herald.OperatorSettings() if hasattr(herald, "OperatorSettings") else None
    covered, missing = [], []
    for f in fields:
        section, attr = f.split(".")
        ok = ours is not None and hasattr(getattr(ours, section, None), attr)
        (covered if ok else missing).append(f"settings.{f}")
    return covered, missing


def surface() -> dict:
    """Everything measured: per kind, the names fully and partly covered and
    missing, and every gap."""
    result = {"names": {"full": [], "partly": [], "missing": []},
              "decorators": {"full": [], "partly": [], "missing": []},
              "gaps": []}
    for name in kopf.__all__:
        status, gaps = name_coverage(name)
        result["names"][status].append(name)
        result["gaps"] += gaps if status == "partly" else [name] if status == "missing" else []
    kwargs_total = kwargs_missing = 0
    for name, sig in _kopf_decorators().items():
        status, gaps = decorator_coverage(name, sig)
        result["decorators"][status].append(name)
        kwargs_total += len(sig.parameters)
        kwargs_missing += len(sig.parameters) if status == "missing" else len(gaps)
        result["gaps"] += gaps
    covered, missing = settings_coverage()
    result["settings"] = (len(covered), len(covered) + len(missing))
    result["kwargs"] = (kwargs_total - kwargs_missing, kwargs_total)
    result["gaps"] += missing
    return result


def _report(r: dict) -> str:
    n, d = r["names"], r["decorators"]
    return (f"Kopf {kopf.__version__} public names ({len(kopf.__all__)}): "
            f"{len(n['full'])} fully, {len(n['partly'])} partly, {len(n['missing'])} missing "
            f"({len(PARTLY)} names and arguments present with a documented difference); "
            f"kopf.on decorators ({sum(map(len, d.values()))}): {len(d['full'])} fully, "
            f"{len(d['partly'])} partly, {len(d['missing'])} missing; decorator arguments "
            f"accepted: {r['kwargs'][0]}/{r['kwargs'][1]}; settings fields: "
            f"{r['settings'][0]}/{r['settings'][1]}")


def _listed(gap: str) -> bool:
    """Whether a gap is in NOT_YET, directly or through its whole name
    ("on.mutate" lists every argument of it; "settings.peering" every field
    of the section)."""
    if gap in NOT_YET:
        return True
    head = gap.split("(")[0]
    parts = head.split(".")
    return any(".".join(parts[:i]) in NOT_YET for i in range(1, len(parts) + 1)) \
        or head in NOT_YET


# --- the tests ---------------------------------------------------------------

def test_the_pinned_kopf_is_measured():
    assert kopf.__version__ == KOPF_VERSION


def test_kopf_surface_coverage_only_grows(capsys):
    r = surface()
    with capsys.disabled():
        print("\n" + _report(r))
    regressions = sorted(g for g in r["gaps"] if not _listed(g))
    assert not regressions, (
        "Kopf's API is not covered where it was (or a new gap is not listed in NOT_YET "
        f"with a reason): {regressions}")
    gaps = set(r["gaps"])
    stale = sorted(k for k in NOT_YET
                   if k not in gaps and not any(g.split("(")[0] == k or g.startswith(k + ".")
                                                or g.startswith(k + "(") for g in gaps))
    assert not stale, f"covered now: take these off NOT_YET: {stale}"


@pytest.mark.parametrize("name", sorted(_kopf_decorators()))
def test_every_decorator_argument_of_kopf_is_accepted(name):
    status, gaps = decorator_coverage(name, _kopf_decorators()[name])
    assert all(_listed(g) for g in gaps), gaps


def test_missing_arguments_compares_names_and_positions():
    def kopf_like(a1=None, a2=None, /, *, group=None, id=None): ...
    def ours(*resource, id=None): ...
    def ours_fixed(a1=None, /, *, group=None, id=None, **kw): ...
    assert missing_arguments(inspect.signature(kopf_like), ours) == ["group"]
    assert missing_arguments(inspect.signature(kopf_like), ours_fixed) == ["a2"]


@pytest.mark.parametrize("entry", sorted(PARTLY))
def test_what_differs_is_there(entry):
    head, _, arg = entry.partition("(")
    target = herald
    for part in head.split("."):
        target = getattr(target, part)
    if arg:
        assert arg.rstrip(")") in inspect.signature(target).parameters
