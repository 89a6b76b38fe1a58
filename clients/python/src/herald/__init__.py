"""Herald's Python client: Kubernetes handlers in the style of Kopf, served by
the Herald sidecar over its handler stream.

    import herald

    @herald.on.create('kopfexamples')
    def create_fn(spec, name, logger, **_):
        logger.info(f"created {name}")
        return {'message': 'hello'}

Run with ``herald run handlers.py`` (or ``python -m herald run``).
"""

from herald import on
from herald.on import daemon, declare_index, index, timer
from herald.errors import HandlerError, PermanentError, RegistrationRejected, TemporaryError
from herald.registry import Handler, Registry, get_default_registry, set_default_registry
from herald._execution import get_executor, run_in_executor, subhandler
from herald.runtime import Operator, operator
from herald.structs import ABSENT, PRESENT, DaemonStopped, ErrorsMode, Memo, Patch, Resource, adopt

__all__ = [
    "ABSENT", "DaemonStopped", "ErrorsMode", "Handler", "HandlerError", "Memo", "Operator", "PRESENT",
    "Patch", "PermanentError", "Registry", "RegistrationRejected", "Resource", "TemporaryError",
    "get_default_registry", "get_executor", "on", "operator", "run_in_executor",
    "set_default_registry", "adopt", "daemon", "declare_index", "index", "subhandler", "timer",
]
__version__ = "0.1.0"
