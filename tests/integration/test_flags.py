"""The sidecar's command line: every flag is checked before anything starts.

A bad value exits with code 2 and one line naming the flag, the value and
why. These run the real binary without a control plane: the checks come
before the kubeconfig is even read."""

import grp
import json
import os
import stat
import subprocess

import pytest

from heraldproc import BAZEL_BIN, Proc

pytestmark = pytest.mark.usefixtures("binaries")


def run(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "KUBECONFIG": str(tmp_path / "no-such-kubeconfig")}
    return subprocess.run([str(BAZEL_BIN / "server" / "herald"),
                           f"--socket={tmp_path}/herald.sock", *args],
                          env=env, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("flag,line", [
    ("--namespaces=team-[",
     "herald: --namespaces='team-[': 'team-[': the '[' at position 6 is never closed "
     "(a [...] lists characters or ranges, e.g. team-[ab] or team-[a-c])"),
    ("--namespaces=Team-A",
     "herald: --namespaces='Team-A': 'Team-A' is not a namespace name (lowercase letters, "
     "digits and '-', starting and ending with a letter or digit, at most 63 characters)"),
    ("--watch_idle_timeout=0s",
     "herald: --watch_idle_timeout='0': must be at least 1s (every list and watch read is "
     "abandoned after this long without data)"),
    ("--stop_wait=-5s", "herald: --stop_wait='-5s': must not be negative"),
    ("--leader_elect_renew_deadline=20s",
     "herald: --leader_elect_renew_deadline='20s': must be above 0 and shorter than "
     "--leader_elect_lease_duration (15s): the leader must stop before another replica may "
     "take the lease"),
    ("--leader_elect_lease_duration=2500ms",
     "herald: --leader_elect_lease_duration='2.5s': must be a whole number of seconds, at "
     "least 1s (the Lease keeps seconds)"),
    ("--leader_elect_retry_period=9s",
     "herald: --leader_elect_retry_period='9s': must be above 0, and 1.2 times it shorter "
     "than --leader_elect_renew_deadline (10s), so that a renewal can be retried"),
    ("--leader_elect_lease_name=Herald",
     "herald: --leader_elect_lease_name='Herald': not a Lease name (a DNS subdomain): may "
     "contain only lowercase letters, digits, '-' and '.'"),
    ("--leader_elect_namespace=-ops",
     "herald: --leader_elect_namespace='-ops': not a namespace name: must start and end with "
     "a letter or digit"),
    ("--max_message_bytes=0",
     "herald: --max_message_bytes='0': must be between 1024 and 1073741824 (1 GiB)"),
    ("--max_message_bytes=2147483648",
     "herald: --max_message_bytes='2147483648': must be between 1024 and 1073741824 (1 GiB)"),
    ("--qps=-1", "herald: --qps='-1': must be 0 (no client-side limit) or more"),
    ("--qps=nan", "herald: --qps='nan': must be 0 (no client-side limit) or more"),
    ("--burst=0",
     "herald: --burst='0': must be at least 1 (requests let through at once by the "
     "client-side limit)"),
    ("--resource=pods,,configmaps", "herald: --resource='pods,,configmaps': entry 2 is empty"),
    ("--annotation_prefix=not_a_domain",
     "herald: --annotation_prefix='not_a_domain': not usable as an annotation prefix: the "
     "prefix 'not_a_domain' is not a DNS subdomain"),
    ("--finalizer=a/b/c",
     "herald: --finalizer='a/b/c': not a valid finalizer name: more than one '/'"),
    ("--listen=localhost", "herald: --listen='localhost': not host:port"),
    ("--socket=/tmp/" + "s" * 120,
     "herald: --socket='/tmp/" + "s" * 120 + "': a Unix socket path has at most 107 bytes; "
     "this one has 125"),
    ("--socket_mode=0999",
     "herald: --socket_mode='0999': not an octal mode between 0000 and 0777 (e.g. 0660)"),
    ("--socket_mode=1777",
     "herald: --socket_mode='1777': not an octal mode between 0000 and 0777 (e.g. 0660)"),
    ("--socket_group=no-such-group", "herald: --socket_group='no-such-group': no such group"),
    ("--log_level=loud", "herald: --log_level='loud': not debug, info, warning or error"),
    ("--log_format=xml", "herald: --log_format='xml': not text or json"),
    ("--operator_memo=[1]", "herald: --operator_memo='[1]': not a JSON object"),
    ("--index=by_app=pods:label:not a/valid//key",
     "herald: --index='by_app=pods:label:not a/valid//key': 'by_app=pods:label:not "
     "a/valid//key': index label 'not a/valid//key': not a valid label key: more than one '/'"),
    ("--index=by_node=pods:field:spec..nodeName",
     "herald: --index='by_node=pods:field:spec..nodeName': 'by_node=pods:field:spec..nodeName'"
     ": index field 'spec..nodeName': segment 2 is empty"),
])
def test_a_bad_flag_exits_2_with_one_line_naming_it(flag, line, tmp_path):
    # The last --socket wins, so a test of --socket overrides run()'s.
    res = run(flag, tmp_path=tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [x for x in (res.stdout + res.stderr).splitlines() if x.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(line), lines[0]


def test_with_log_format_json_a_bad_flag_is_one_json_error_line(tmp_path):
    res = run("--log_format=json", "--qps=-1", tmp_path=tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [x for x in (res.stdout + res.stderr).splitlines() if x.strip()]
    assert len(lines) == 1, lines
    line = json.loads(lines[0])
    assert line == {"time": line["time"], "level": "error", "logger": "main",
                    "message": "--qps='-1': must be 0 (no client-side limit) or more"}
    # A start that fails (no kubeconfig here) says so in JSON too.
    res = run("--log_format=json", tmp_path=tmp_path)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [json.loads(x) for x in (res.stdout + res.stderr).splitlines() if x.strip()]
    assert lines and (lines[-1]["level"], lines[-1]["logger"]) == ("error", "main"), lines
    assert "no-such-kubeconfig" in lines[-1]["message"], lines


def start_under_umask_000(tmp_path, *flags: str) -> tuple[Proc, str]:
    """The sidecar with an API server that does not answer (it is not needed
    to listen), started by a shell whose umask is 000."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1",
                                               "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    sock = str(tmp_path / "herald.sock")
    h = Proc(["sh", "-c", 'umask 000 && exec "$0" "$@"', str(BAZEL_BIN / "server" / "herald"),
              f"--kubeconfig={kubeconfig}", f"--socket={sock}", *flags],
             env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    return h, sock


def test_the_socket_is_0660_whatever_the_umask(tmp_path):
    h, sock = start_under_umask_000(tmp_path)
    try:
        h.wait_for(r"handler stream listening on unix:", timeout=10)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    finally:
        assert h.stop() == 0


def test_socket_mode_and_group_flags(tmp_path):
    # Another group than the sidecar's own, to see the change.
    group = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())
    h, sock = start_under_umask_000(tmp_path, "--socket_mode=0600",
                                    f"--socket_group={group.gr_name}")
    try:
        h.wait_for(r"handler stream listening on unix:", timeout=10)
        st = os.stat(sock)
        assert stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_gid == group.gr_gid
    finally:
        assert h.stop() == 0


def test_the_default_is_no_client_side_rate_limit(tmp_path):
    """--qps defaults to 0 (no limit): a burst of objects is paced by the API
    server's own flow control, not throttled below it."""
    res = subprocess.run([str(BAZEL_BIN / "server" / "herald"), "--helpfull"],
                         capture_output=True, text=True, timeout=30)
    text = " ".join((res.stdout + res.stderr).split())
    assert "--qps (Client-side rate limit of API requests per second; 0 for none, the " \
           "default:" in text, text
    qps = text[text.index("--qps ("):]
    assert qps[qps.index("); default: "):].startswith("); default: 0;"), qps[:400]
