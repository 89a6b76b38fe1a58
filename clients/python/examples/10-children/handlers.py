"""Children with owner references: each KopfExample gets a ConfigMap that
Kubernetes deletes together with it."""

import kubernetes

import herald

_api = None


def api() -> kubernetes.client.CoreV1Api:
    # In a pod: the service account; elsewhere: $KUBECONFIG.
    global _api
    if _api is None:
        try:
            kubernetes.config.load_incluster_config()
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()
        _api = kubernetes.client.CoreV1Api()
    return _api


@herald.on.create('kopfexamples')
def create_fn(body, spec, namespace, logger, **_):
    child = {
        'apiVersion': 'v1',
        'kind': 'ConfigMap',
        'data': {'field': str(spec.get('field', ''))},
    }
    herald.adopt(child, owner=body)
    created = api().create_namespaced_config_map(namespace=namespace, body=child)
    logger.info(f"created the child ConfigMap {created.metadata.name}")
    return {'children': [created.metadata.name]}
