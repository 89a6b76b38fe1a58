import herald


@herald.on.create('kopfexamples')
def create_fn(spec, name, namespace, logger, **kwargs):
    logger.info(f"A handler is called with body: {spec}")
    return {'message': f"hello {namespace}/{name}"}
