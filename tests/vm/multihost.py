#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Boot several guests at once for one multi-host profile and judge them.

Called by tests/vm/run.sh for a profile with `hosts=N` (see tests/vm/README.md,
"Multi-host profiles").  For each host h in 0..N-1 it builds an initramfs
with tests/vm/mkinitramfs.sh whose tests see BELUGA_VM_HOST=h,
BELUGA_VM_HOSTS=N and BELUGA_VM_NONCE (random per run), boots them all
concurrently with tests/vm/boot.sh, each with its own console log and results
channel, and gives every guest the same control area (an ivshmem-plain device
backed by one file, laid out as tests/multihost/rendezvous.hpp says) through
which the guests' tests meet.  While they run it:
  - kills a guest's QEMU when one of its tests asks for it on the results
    channel ("beluga-vm: kill-request <host> <nonce>"), waits until that QEMU
    is gone and marks the host gone (killed) in the control area;
  - marks a host gone (exited) when its QEMU ends otherwise, so that peers
    waiting for it fail at once instead of at their bound.
Then it judges each guest with tests/vm/judge.py (a guest that died or never
reported fails; one killed on request is judged on what it reported before),
prints one block per guest and writes the profile's counts file
(`passed failed skipped ok init-time`) that run.sh sums into its closing line.
"""
import argparse
import os
import re
import secrets
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = 0x484D4147554C4542  # "BELUGAMH"
VERSION = 1
SLOT = 4096
CTL_SIZE = 1 << 20
GONE_KILLED = 1
GONE_EXITED = 2
KILL_REQUEST = re.compile(r"^beluga-vm: kill-request (\d+) ([0-9a-f]{16})$")
BEGIN = re.compile(r"^beluga-vm: begin (\S+)$")


def write_header(path, nonce, hosts):
    """A fresh control area for this run: header, every slot zero."""
    with open(path, "wb") as f:
        f.truncate(CTL_SIZE)
        f.write(struct.pack("<QQII", MAGIC, nonce, hosts, VERSION))


def mark_gone(path, host, nonce, why):
    """Marks @host gone in the control area (why first, then the nonce that
    makes the mark valid: a guest reads the nonce, then why)."""
    with open(path, "r+b") as f:
        f.seek(SLOT * (1 + host) + 24)
        f.write(struct.pack("<Q", why))
        f.flush()
        f.seek(SLOT * (1 + host) + 16)
        f.write(struct.pack("<Q", nonce))
        f.flush()


class Watch:
    """What one guest has written on its results channel so far."""

    def __init__(self, host, nonce):
        self.host = host
        self.nonce = nonce
        self.offset = 0
        self.partial = ""
        self.last_begun = None
        self.kill_requested_during = None  # test running when the kill was asked
        self.problems = []

    def feed(self, text):
        """Consumes more of the results channel; returns True when a valid
        kill request arrived in it."""
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        asked = False
        for line in lines:
            line = line.rstrip("\r")
            m = BEGIN.match(line)
            if m:
                self.last_begun = m[1]
                continue
            m = KILL_REQUEST.match(line)
            if not m:
                continue
            if int(m[1]) != self.host or int(m[2], 16) != self.nonce:
                self.problems.append(f"kill request '{line}' is not for host {self.host} of this run")
            elif self.kill_requested_during is None:
                self.kill_requested_during = self.last_begun
                asked = True
        return asked

    def poll(self, path):
        try:
            with open(path, errors="replace") as f:
                f.seek(self.offset)
                text = f.read()
                self.offset = f.tell()
        except FileNotFoundError:
            return False
        return self.feed(text)


def kill_qemu(pidfile, bound=60.0):
    """SIGKILL the QEMU whose -pidfile is @pidfile; wait (bounded) until it
    is gone.  Returns an error message or None."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError) as e:
        return f"no QEMU pid in {pidfile}: {e}"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return f"QEMU {pid} was already gone when its kill was asked"
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        # Killed but not yet reaped by its parent: as good as gone.
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return None
        except (OSError, IndexError):
            return None
        time.sleep(0.05)
    return f"QEMU {pid} still there {bound} s after SIGKILL"


def substitute(text, **values):
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return text


def read_counts(path):
    """judge.py's counts: passed failed skipped ok init-time [cases-skipped]."""
    try:
        with open(path) as f:
            fields = f.read().split()
        np_, nf, ns, ok = (int(x) for x in fields[:4])
        nc = int(fields[5]) if len(fields) > 5 else 0
        return np_, nf, ns, ok, fields[4], nc
    except (OSError, ValueError, IndexError):
        return 0, 1, 0, 0, "?", 0


def run(a):
    out = os.path.realpath(a.out)
    os.makedirs(out, exist_ok=True)
    nonce = secrets.randbits(64)
    shm_parent = "/dev/shm" if os.access("/dev/shm", os.W_OK) else out
    shm = tempfile.mkdtemp(prefix=f"beluga-{a.name}-", dir=shm_parent)
    procs = []
    try:
        return _run(a, out, nonce, shm, procs)
    finally:
        # Interrupted (^C, an exception): no QEMU may outlive the runner.
        for p, pidfile in procs:
            if p.poll() is None:
                kill_qemu(pidfile, bound=10)
                p.kill()
                p.wait()
        shutil.rmtree(shm, ignore_errors=True)


def _run(a, out, nonce, shm, procs):
    hosts, name = a.hosts, a.name
    ctl = os.path.join(shm, "control")
    write_header(ctl, nonce, hosts)
    if a.host_setup:
        env = dict(os.environ, HOSTS=str(hosts))
        if subprocess.run(["bash", "-c", a.host_setup], cwd=shm, env=env, check=False).returncode:
            return fail(a, f"host_setup failed: {a.host_setup}")

    guests = []
    for h in range(hosts):
        g = {"host": h, "tag": f"{name}-h{h}"}
        for key, suffix in (("img", ".cpio"), ("log", ".log"), ("res", ".results"),
                            ("pid", ".pid"), ("counts", ".counts")):
            g[key] = os.path.join(out, g["tag"] + suffix)
        for key in ("pid", "counts", "log", "res"):
            if os.path.exists(g[key]):
                os.unlink(g[key])
        cmd = [*a.mkinitramfs, "--out", g["img"], "--kver", a.kver, "--build-dir", a.build_dir,
               "--ko", a.ko, "--test-ko", a.test_ko, "--params", a.params, "--profile", name,
               "--test-timeout", str(a.test_timeout), "--setup", a.setup, "--bins", a.bins,
               "--env", f"BELUGA_VM_HOST={h}", "--env", f"BELUGA_VM_HOSTS={hosts}",
               "--env", f"BELUGA_VM_NONCE={nonce:016x}"]
        for e in a.env:
            cmd += ["--env", e]
        if subprocess.run(cmd + a.lists, check=False).returncode:
            return fail(a, f"building the image of host {h} failed")
        guests.append(g)
    try:
        with open(guests[0]["img"] + ".d/etc/beluga/tests") as f:
            ntests = sum(1 for line in f if line.strip())
    except OSError:
        ntests = "?"
    print(f"vm[{name}]: booting {hosts} guests of {a.kver} at once (-smp {a.smp}) with '{a.cmdline}'"
          f" beluga params '{a.params}', {ntests} tests each, nonce {nonce:016x}", flush=True)

    t0 = time.monotonic()
    for g in guests:
        qemu = substitute(a.qemu, OUT=out, SHM=shm, HOST=g["host"])
        qemu += (f" -object memory-backend-file,id=mh-ctl,share=on,mem-path={ctl},size={CTL_SIZE}"
                 f" -device ivshmem-plain,bus=pcie.0,memdev=mh-ctl -pidfile {g['pid']}")
        cmd = [*a.boot, "--kernel", a.kernel, "--initrd", g["img"], "--log", g["log"],
               "--results", g["res"], "--append", a.cmdline, "--timeout", str(a.timeout),
               "--machine", a.machine, "--qemu-extra", qemu, "--smp", str(a.smp)]
        if a.live:
            cmd.append("--live")
        # boot.sh's stderr: bash reports the QEMU a kill request killed;
        # shown below only for guests that were not killed on request.
        g["stderr"] = os.path.join(out, g["tag"] + ".boot-stderr")
        with open(g["stderr"], "w") as err:
            g["proc"] = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=err,
                                         stdout=None if a.live else subprocess.DEVNULL)
        procs.append((g["proc"], g["pid"]))
        g["watch"] = Watch(g["host"], nonce)
        g["killed_during"] = None
        g["problems"] = g["watch"].problems
        g["gone"] = False

    running = list(guests)
    while running:
        for g in list(running):
            if g["watch"].poll(g["res"]) and g["killed_during"] is None:
                g["killed_during"] = g["watch"].kill_requested_during
                err = kill_qemu(g["pid"])
                if err:
                    g["problems"].append(err)
                print(f"vm[{name}]: killed host {g['host']}'s QEMU at the request of"
                      f" {g['killed_during']} ({time.monotonic() - t0:.1f} s)", flush=True)
                mark_gone(ctl, g["host"], nonce, GONE_KILLED)
                g["gone"] = True
            rc = g["proc"].poll()
            if rc is not None:
                g["watch"].poll(g["res"])
                g["rc"], g["wall"] = rc, time.monotonic() - t0
                if not g["gone"]:
                    mark_gone(ctl, g["host"], nonce, GONE_EXITED)
                    g["gone"] = True
                running.remove(g)
        time.sleep(0.2)
    wall = time.monotonic() - t0

    total = [0, 0, 0, 0]
    all_ok = 1
    for g in guests:
        cmd = [sys.executable, os.path.join(HERE, "judge.py"), "--name", g["tag"],
               "--console", g["log"], "--results", g["res"], "--rc", str(g["rc"]),
               "--timeout", str(a.timeout), "--counts", g["counts"], "--wall", f"{g['wall']:.1f}"]
        if g["killed_during"]:
            cmd += ["--killed-during", g["killed_during"]]
        if a.expect and not g["killed_during"]:  # its last test never finished
            cmd += ["--expect", a.expect]
        if a.show_output:
            cmd.append("--show-output")
        if not g["killed_during"]:
            with open(g["stderr"], errors="replace") as f:
                sys.stdout.write(f.read())
        sys.stdout.flush()
        subprocess.run(cmd, check=False)
        np_, nf, ns, ok, _, nc = read_counts(g["counts"])
        for p in g["problems"]:
            print(f"vm[{g['tag']}]: FAILED: {p}")
            ok = 0
        if not ok and nf == 0:
            nf = 1
        total = [total[0] + np_, total[1] + nf, total[2] + ns, total[3] + nc]
        all_ok &= ok
    print(f"vm[{name}]: {hosts} guests, boot + tests {wall:.1f} s wall; "
          f"{total[0]} passed, {total[1]} failed, {total[2]} skipped", flush=True)
    write_counts(a, *total[:3], all_ok, total[3])
    return 0 if all_ok else 1


def write_counts(a, np_, nf, ns, ok, nc=0):
    if a.counts:
        with open(a.counts, "w") as f:
            f.write(f"{np_} {nf} {ns} {ok} ? {nc}\n")


def fail(a, why):
    print(f"vm[{a.name}]: {why}", flush=True)
    write_counts(a, 0, 1, 0, 0)
    return 1


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--hosts", type=int, default=2)
    p.add_argument("--kver", required=True)
    p.add_argument("--kernel", required=True)
    p.add_argument("--ko", required=True)
    p.add_argument("--test-ko", default="")
    p.add_argument("--build-dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--cmdline", default="")
    p.add_argument("--params", default="")
    p.add_argument("--machine", default="")
    p.add_argument("--qemu", default="", help="QEMU arguments; @OUT@, @SHM@ (this run's"
                   " directory in /dev/shm) and @HOST@ (host index) are replaced")
    p.add_argument("--host-setup", default="", help="shell run in the @SHM@ directory, HOSTS set")
    p.add_argument("--setup", default="")
    p.add_argument("--bins", default="")
    p.add_argument("--env", action="append", default=[], help="VAR=VALUE for every guest")
    p.add_argument("--smp", type=int, default=1)
    p.add_argument("--expect", default="",
                   help="judge.py --expect for every guest: what must not skip")
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--test-timeout", type=int, default=300)
    p.add_argument("--show-output", action="store_true")
    p.add_argument("--live", action="store_true")
    p.add_argument("--counts")
    # Test doubles of boot.sh and mkinitramfs.sh (test_multihost.py).
    p.add_argument("--boot", type=shlex.split, default=["bash", os.path.join(HERE, "boot.sh")],
                   help=argparse.SUPPRESS)
    p.add_argument("--mkinitramfs", type=shlex.split,
                   default=["bash", os.path.join(HERE, "mkinitramfs.sh")], help=argparse.SUPPRESS)
    p.add_argument("lists", nargs="*")
    a = p.parse_args(argv)
    if not 1 <= a.hosts <= 255:
        p.error("--hosts must be 1..255")
    return a


def main():
    sys.exit(run(parse_args(sys.argv[1:])))


if __name__ == "__main__":
    main()
