import herald


@herald.on.create('kopfexamples', labels={'somelabel': 'somevalue'})
def labelled(**_):
    return 'matched somelabel=somevalue'


@herald.on.create('kopfexamples', annotations={'skip': herald.ABSENT},
                  labels={'team': herald.PRESENT})
def team_objects(labels, **_):
    return f"team {labels['team']}"


@herald.on.create('kopfexamples', when=lambda spec, **_: spec.get('duration') == '1m')
def one_minute(**_):
    return 'duration is 1m'
