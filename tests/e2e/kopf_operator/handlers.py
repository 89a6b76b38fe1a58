"""An operator written for Kopf, run on Herald with only the import changed.

It uses what Kopf operators commonly do: typing annotations, a settings
change at startup, stacked decorators, group/version/plural selectors and
the ('group/version', 'plural') form, a combinator filter, a callable field
value filter, `param`, and `kopf.adopt` with the owner from the context.
"""

import logging

import herald as kopf  # A Kopf operator says: import kopf

SELECTOR = dict(group="kopf.dev", version="v1", plural="kopfexamples")


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_) -> None:
    # Errors that name no delay are retried after 1 s instead of 60 s.
    settings.execution.default_backoff = 1
    settings.posting.level = logging.WARNING
    logger.info("configured")


def is_big(spec: kopf.Spec, **_) -> bool:
    return spec.get("size", 0) >= 3


def is_paused(spec: kopf.Spec, **_) -> bool:
    return bool(spec.get("paused"))


@kopf.on.resume("kopf.dev/v1", "kopfexamples")
@kopf.on.create(**SELECTOR)
def ensure(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, reason: kopf.Reason,
           logger: kopf.Logger, **_) -> dict:
    child = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"size": str(spec.get("size"))}}
    kopf.adopt(child)  # Owned by, named after, in the namespace of, labelled as the object.
    logger.info(f"ensured {meta.name} for {reason}")  # Below the posting level: not an Event.
    kopf.event(body, type="Normal", reason="Ensured", message=f"child ensured for {reason}")
    return {"reason": str(reason), "child": child["metadata"]}


@kopf.on.create(**SELECTOR, id="flaky", param={"failures": 1})
def flaky(param: dict, retry: int, **_) -> dict:
    if retry < param["failures"]:
        raise RuntimeError("not ready yet")  # Retried after settings' default backoff.
    return {"retries": retry}


@kopf.on.update(**SELECTOR, field="spec.size", when=kopf.all_([is_big, kopf.not_(is_paused)]))
def grow(old, new, diff: kopf.Diff, **_) -> dict:
    return {"from": old, "to": new, "ops": [str(item.operation) for item in diff]}


@kopf.on.field("kopf.dev", "kopfexamples", field="spec.mode",
               value=lambda value, **_: value == "fast")
def fast(new, **_) -> str:
    return f"now {new}"


@kopf.on.delete(**SELECTOR)
def cleanup_children(meta: kopf.Meta, logger: kopf.Logger, **_) -> None:
    logger.info(f"deleted {meta.name}")
