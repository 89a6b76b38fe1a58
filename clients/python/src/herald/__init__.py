"""Herald's Python client: Kubernetes handlers in the style of Kopf, served by
the Herald sidecar over its handler stream.

    import herald

    @herald.on.create('kopfexamples')
    def create_fn(spec, name, logger, **_):
        logger.info(f"created {name}")
        return {'message': 'hello'}

Run with ``herald run handlers.py`` (or ``python -m herald run``). Kopf's
public names are here too, so that ``import herald as kopf`` serves an
operator written for Kopf (docs/porting-from-kopf.md).
"""

from herald import lifecycles, on
from herald.on import daemon, declare_index, index, timer
from herald.callbacks import all_, any_, none_, not_
from herald.errors import (HandlerError, HandlerRetriesError, HandlerTimeoutError, LoginError,
                           PermanentError, RegistrationRejected, TemporaryError)
from herald.hierarchies import (adjust_namespace, adopt, append_owner_reference,
                                build_object_reference, build_owner_reference, harmonize_naming,
                                label, remove_owner_reference)
from herald.lifecycles import get_default_lifecycle, set_default_lifecycle
from herald.persistence import (AnnotationsDiffBaseStorage, AnnotationsProgressStorage,
                                DiffBaseStorage, MultiDiffBaseStorage, MultiProgressStorage,
                                ProgressRecord, ProgressStorage, SmartProgressStorage,
                                StatusDiffBaseStorage, StatusProgressStorage)
from herald.login import (AiohttpSession, ConnectionInfo, login_via_async_client,
                          login_via_client, login_via_pykube, login_with_kubeconfig,
                          login_with_service_account)
from herald.registry import Handler, Registry, get_default_registry, set_default_registry
from herald._execution import get_executor, register, run_in_executor, subhandler
from herald._logging import ObjectLogger
from herald.runtime import Operator, operator
from herald.embedding import run, run_tasks, spawn_tasks
from herald.posting import event, exception, info, warn
from herald.selectors import EVERYTHING
from herald.settings import LogFormat, OperatorSettings, configure
from herald.structs import ABSENT, PRESENT, DaemonStopped, ErrorsMode, Memo, Patch, Resource
from herald.typedefs import (Annotations, Body, BodyEssence, DaemonStoppingReason, Diff, DiffItem,
                             DiffOperation, FieldPath, FieldSpec, HandlerId, Index, Labels, Logger,
                             Meta, ObjectReference, OwnerReference, PatchFn, RawBody, RawEvent,
                             RawEventType, Reason, Spec, Status, Store)

# Kopf's names for what herald has under its own.
OperatorRegistry = Registry
LocalObjectLogger = ObjectLogger
SyncDaemonStopperChecker = DaemonStopped  # Deprecated in Kopf.
AsyncDaemonStopperChecker = DaemonStopped  # Deprecated in Kopf.

__all__ = [
    "ABSENT", "DaemonStopped", "ErrorsMode", "Handler", "HandlerError", "Memo", "Operator", "PRESENT",
    "Patch", "PermanentError", "Registry", "RegistrationRejected", "Resource", "TemporaryError",
    "get_default_registry", "get_executor", "on", "operator", "run_in_executor",
    "set_default_registry", "adopt", "daemon", "declare_index", "index", "subhandler", "timer",
    # Kopf's public names.
    "AiohttpSession", "Annotations", "AsyncDaemonStopperChecker", "Body", "BodyEssence",
    "ConnectionInfo", "DaemonStoppingReason", "Diff", "DiffItem", "DiffOperation", "EVERYTHING",
    "FieldPath", "FieldSpec", "HandlerId", "HandlerRetriesError", "HandlerTimeoutError", "Index",
    "Labels", "LocalObjectLogger", "LogFormat", "Logger", "LoginError", "Meta", "ObjectLogger",
    "ObjectReference", "OperatorRegistry", "OperatorSettings", "OwnerReference", "PatchFn",
    "RawBody", "RawEvent", "RawEventType", "Reason", "Spec", "Status", "Store",
    "SyncDaemonStopperChecker", "adjust_namespace", "all_", "any_", "append_owner_reference",
    "build_object_reference", "build_owner_reference", "configure", "harmonize_naming", "label",
    "login_via_async_client", "login_via_client", "login_via_pykube", "login_with_kubeconfig",
    "login_with_service_account", "none_", "not_", "register", "remove_owner_reference",
    "event", "exception", "info", "run", "run_tasks", "spawn_tasks", "warn",
    "lifecycles", "get_default_lifecycle", "set_default_lifecycle",
    "AnnotationsDiffBaseStorage", "AnnotationsProgressStorage", "DiffBaseStorage",
    "MultiDiffBaseStorage", "MultiProgressStorage", "ProgressRecord", "ProgressStorage",
    "SmartProgressStorage", "StatusDiffBaseStorage", "StatusProgressStorage",
]
__version__ = "0.1.0"
