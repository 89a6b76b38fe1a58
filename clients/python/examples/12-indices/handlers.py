import herald


@herald.index('kopfexamples')
def by_duration(spec, name, **_):
    # Every object contributes {its duration: its name}.
    return {spec.get('duration'): name}


@herald.on.create('kopfexamples')
def create_fn(name, spec, by_duration, logger, **_):
    # The index from all objects, filled before any handler runs.
    same = sorted(n for n in by_duration.get(spec.get('duration'), []) if n != name)
    logger.info(f"{name} shares its duration with {same}")
    return {'same_duration': same}
