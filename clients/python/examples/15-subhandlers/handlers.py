import herald


@herald.on.create('kopfexamples')
def create_fn(spec, **_):
    # One sub-handler per item; each keeps its own progress, so an item that
    # succeeded is not created again when another one is retried.
    for item in spec.get('items', []):
        @herald.subhandler(id=f'item-{item}')
        def create_item(patch, retry, logger, item=item, **_):
            if item.startswith('slow') and retry == 0:
                raise herald.TemporaryError(f"{item} is not ready yet", delay=1)
            logger.info(f"created {item}")
            patch.status[f'item-{item}'] = 'created'
