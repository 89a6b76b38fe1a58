"""Kopf's helpers for object hierarchies: owner references, names,
namespaces and labels of children, as dicts (Kubernetes objects as JSON).

Inside a handler the owner defaults to the handler's object, as in Kopf:

    @herald.on.create('kopfexamples')
    def create_fn(**_):
        child = {'apiVersion': 'v1', 'kind': 'ConfigMap', 'data': {}}
        herald.adopt(child)   # owned by, named after, labelled as the object

Each takes one object or a list (nested lists too) of them.
"""

from __future__ import annotations

import contextvars
from typing import Any, Iterable, Iterator, Mapping, Optional

from herald.typedefs import ObjectReference, OwnerReference

# The body of the object whose handler runs in this context (None outside).
owner_var: contextvars.ContextVar[Optional[Mapping[str, Any]]] = contextvars.ContextVar(
    "herald_owner", default=None)

_UNSET: Any = object()


def _guess_owner(owner: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    if owner is not None:
        return owner
    body = owner_var.get()
    if body:
        return body
    raise LookupError("Owner must be set explicitly, since running outside of a handler.")


def _walk(objs: Any, nested: Iterable[str] = ()) -> Iterator[dict]:
    """The objects in `objs` (an object or nested lists of them), each
    followed by the dicts at its `nested` dotted paths that exist."""
    if objs is None:
        return
    if isinstance(objs, Mapping):
        yield objs  # type: ignore[misc]
        for path in nested:
            target: Any = objs
            for key in path.split("."):
                target = target.get(key) if isinstance(target, Mapping) else None
            if isinstance(target, Mapping):
                yield target  # type: ignore[misc]
        return
    if isinstance(objs, (str, bytes)):
        raise TypeError(f"K8s object class is not supported: {type(objs)}")
    try:
        items = iter(objs)
    except TypeError:
        raise TypeError(f"K8s object class is not supported: {type(objs)}") from None
    for obj in items:
        yield from _walk(obj, nested)


def _paths(nested: Any) -> tuple:
    if nested is None:
        return ()
    if isinstance(nested, str):
        return (nested,)
    return tuple(".".join(p) if isinstance(p, (list, tuple)) else p for p in nested)


def build_object_reference(body: Mapping[str, Any]) -> ObjectReference:
    """A reference to `body` for Events: apiVersion, kind, name, uid,
    namespace (the empty ones left out)."""
    meta = body.get("metadata", {})
    ref = dict(apiVersion=body.get("apiVersion"), kind=body.get("kind"),
               name=meta.get("name"), uid=meta.get("uid"), namespace=meta.get("namespace"))
    return {k: v for k, v in ref.items() if v}  # type: ignore[return-value]


def build_owner_reference(body: Mapping[str, Any], *, controller: Optional[bool] = True,
                          block_owner_deletion: Optional[bool] = True) -> OwnerReference:
    """An owner reference to `body` for its children (None values left out)."""
    meta = body.get("metadata", {})
    ref = dict(controller=controller, blockOwnerDeletion=block_owner_deletion,
               apiVersion=body.get("apiVersion"), kind=body.get("kind"),
               name=meta.get("name"), uid=meta.get("uid"))
    return {k: v for k, v in ref.items() if v is not None}  # type: ignore[return-value]


def append_owner_reference(objs: Any, owner: Optional[Mapping[str, Any]] = None, *,
                           controller: Optional[bool] = True,
                           block_owner_deletion: Optional[bool] = True) -> None:
    """Adds an owner reference to `owner` unless one with its uid is there."""
    ref = build_owner_reference(_guess_owner(owner), controller=controller,
                                block_owner_deletion=block_owner_deletion)
    for obj in _walk(objs):
        refs = obj.setdefault("metadata", {}).setdefault("ownerReferences", [])
        if not any(r.get("uid") == ref.get("uid") for r in refs):
            refs.append(ref)


def remove_owner_reference(objs: Any, owner: Optional[Mapping[str, Any]] = None) -> None:
    """Removes the owner references with `owner`'s uid."""
    uid = build_owner_reference(_guess_owner(owner)).get("uid")
    for obj in _walk(objs):
        refs = obj.setdefault("metadata", {}).setdefault("ownerReferences", [])
        refs[:] = [r for r in refs if r.get("uid") != uid]


def label(objs: Any, labels: Any = _UNSET, *, forced: bool = False, nested: Any = None,
          force: Optional[bool] = None) -> None:
    """Sets `labels` (default: the owner's) on the objects and their
    `nested` paths ("spec.template"); existing keys are kept unless
    `forced` (`force` is Kopf's older name)."""
    forced = forced if force is None else force
    if labels is _UNSET:
        labels = _guess_owner(None).get("metadata", {}).get("labels", {})
    for obj in _walk(objs, _paths(nested)):
        obj_labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        for key, value in labels.items():
            if forced:
                obj_labels[key] = value
            else:
                obj_labels.setdefault(key, value)


def harmonize_naming(objs: Any, name: Any = _UNSET, *, forced: bool = False,
                     strict: bool = False) -> None:
    """Names unnamed objects after `name` (default: the owner's): as the
    prefix "<name>-" of a generated name, or, `strict`, as the name."""
    if name is _UNSET:
        name = _guess_owner(None).get("metadata", {}).get("name")
    if name is None:
        raise LookupError("Name must be set explicitly: couldn't find it automatically.")
    for obj in _walk(objs):
        meta = obj.setdefault("metadata", {})
        if forced or not ({"name", "generateName"} & set(meta)):
            if strict:
                meta["name"] = name
                meta.pop("generateName", None)
            else:
                meta["generateName"] = f"{name}-"
                meta.pop("name", None)


def adjust_namespace(objs: Any, namespace: Any = _UNSET, *, forced: bool = False) -> None:
    """Puts objects without a namespace in `namespace` (default: the owner's)."""
    if namespace is _UNSET:
        namespace = _guess_owner(None).get("metadata", {}).get("namespace")
    for obj in _walk(objs):
        if forced or obj.get("metadata", {}).get("namespace") is None:
            obj.setdefault("metadata", {})["namespace"] = namespace


def adopt(objs: Any, owner: Optional[Mapping[str, Any]] = None, *, forced: bool = False,
          strict: bool = False, nested: Any = None) -> Any:
    """Makes the objects children of `owner` (default: the handler's object),
    as Kopf's ``adopt``: an owner reference (controller, blocking deletion),
    a name after the owner's, the owner's namespace and labels (also on the
    `nested` paths, e.g. "spec.template"; herald also puts the namespace
    there). Returns `objs`."""
    real_owner = _guess_owner(owner)
    meta = real_owner.get("metadata", {})
    paths = _paths(nested)
    append_owner_reference(objs, owner=real_owner)
    harmonize_naming(objs, forced=forced, strict=strict, name=meta.get("name"))
    adjust_namespace(objs, forced=forced, namespace=meta.get("namespace"))
    if meta.get("namespace"):
        for obj in _walk(objs):
            for target in list(_walk(obj, paths))[1:]:
                target.setdefault("metadata", {}).setdefault("namespace", meta["namespace"])
    label(objs, forced=forced, nested=paths, labels=meta.get("labels", {}))
    return objs
