import herald


@herald.on.field('kopfexamples', field='spec.field')
def field_changed(old, new, logger, **_):
    logger.info(f"spec.field: {old!r} -> {new!r}")
    return {'old': old, 'new': new}


@herald.on.field('kopfexamples', field='spec.mode', new='fast')
def became_fast(**_):
    return 'now fast'


@herald.on.update('kopfexamples', field='spec.items', old=herald.PRESENT)
def items_changed(old, new, **_):
    return {'count': len(new or [])}
