#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Host test of tests/vm/multihost.py: the control area's layout, the parsing
of kill requests, and whole runs with stand-ins for mkinitramfs.sh and
boot.sh (this script, called with --fake-mkinitramfs / --fake-boot; a fake
"guest" is the process the runner kills).  Checks that a kill asked by a
test kills that guest and marks it gone for its peers, that a guest that
dies unasked fails the run and is marked gone, and that one verdict with
the summed counts comes out."""
import os
import shlex
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import multihost  # noqa: E402

NONCE = 0x0123456789ABCDEF


def fake_mkinitramfs(argv):
    """Writes the image's test list and env the way mkinitramfs.sh does."""
    out, envs, i = None, [], 0
    while i < len(argv):
        if argv[i] == "--out":
            out = argv[i + 1]
        elif argv[i] == "--env":
            envs.append(argv[i + 1])
        i += 2 if argv[i].startswith("--") else 1
    os.makedirs(out + ".d/etc/beluga", exist_ok=True)
    open(out, "w").close()
    with open(out + ".d/etc/beluga/tests", "w") as f:
        f.write("mh-x tests/multihost/mh_dax x\n")
    with open(out + ".d/etc/beluga/env", "w") as f:
        f.write("".join(f"export {e}\n" for e in envs))
    return 0


def fake_boot(argv):
    """One guest: writes its pid where QEMU's -pidfile says and results as
    /init would, in the scenario FAKE_SCENARIO (ok, kill, die)."""
    args = dict(zip(argv[::2], argv[1::2]))
    qemu = shlex.split(args["--qemu-extra"])
    pidfile = qemu[qemu.index("-pidfile") + 1]
    ctl = [o.split("mem-path=")[1].split(",")[0] for o in qemu if "id=mh-ctl" in o][0]
    env = dict(line[len("export "):].strip().split("=", 1)
               for line in open(args["--initrd"] + ".d/etc/beluga/env"))
    host, nonce = int(env["BELUGA_VM_HOST"]), int(env["BELUGA_VM_NONCE"], 16)
    with open(pidfile, "w") as f:
        f.write(f"{os.getpid()}\n")
    res = open(args["--results"], "w", buffering=1)
    with open(args["--log"], "w") as con:
        con.write("beluga-vm: init-start 1.0\n")
    scenario = os.environ["FAKE_SCENARIO"]
    res.write("PASS harness/load-beluga\nbeluga-vm: begin mh-x\n")
    victim = host == 1
    if scenario in ("kill", "die") and victim:
        if scenario == "die":
            return 0  # powered off without a word: a guest that died
        res.write(f"beluga-vm: kill-request {host} {nonce:016x}\n")
        time.sleep(600)  # until the runner kills this "QEMU"
        return 3
    if scenario in ("kill", "die"):
        # The survivor waits (bounded) for the runner's gone mark on host 1.
        want = multihost.GONE_KILLED if scenario == "kill" else multihost.GONE_EXITED
        for _ in range(3000):
            with open(ctl, "rb") as f:
                f.seek(multihost.SLOT * 2 + 16)
                gone, why = struct.unpack("<QQ", f.read(16))
            if gone == nonce:
                break
            time.sleep(0.01)
        if gone != nonce or why != want:
            res.write("FAIL mh-x (rc=1)\nbeluga-vm: tainted 4096\n0 passed, 1 failed, 0 skipped\n")
            return 0
    res.write("PASS mh-x\nbeluga-vm: tainted 4096\n2 passed, 0 failed, 0 skipped\n")
    return 0


def run_runner(scenario, hosts=2):
    with tempfile.TemporaryDirectory() as d:
        me = f"{sys.executable} {os.path.abspath(__file__)}"
        argv = ["--name", "mh", "--hosts", str(hosts), "--kver", "k", "--kernel", "vmlinuz",
                "--ko", "beluga.ko", "--build-dir", d, "--out", d, "--counts", f"{d}/mh.counts",
                "--boot", f"{me} --fake-boot", "--mkinitramfs", f"{me} --fake-mkinitramfs",
                "--qemu", "-object x,mem-path=@SHM@/cxl-mem@HOST@", "--timeout", "60"]
        env = dict(os.environ, FAKE_SCENARIO=scenario)
        p = subprocess.run([sys.executable, os.path.join(HERE, "multihost.py"), *argv],
                           capture_output=True, text=True, env=env, check=False, timeout=120)
        with open(f"{d}/mh.counts") as f:
            counts = f.read().split()
        return p.returncode, p.stdout + p.stderr, counts


class ControlArea(unittest.TestCase):
    def test_header_and_gone_marks_where_rendezvous_reads_them(self):
        with tempfile.NamedTemporaryFile() as t:
            multihost.write_header(t.name, NONCE, 3)
            multihost.mark_gone(t.name, 2, NONCE, multihost.GONE_KILLED)
            with open(t.name, "rb") as f:
                data = f.read()
        self.assertEqual(len(data), 1 << 20)
        self.assertEqual(data[:8], b"BELUGAMH")
        self.assertEqual(struct.unpack_from("<QII", data, 8), (NONCE, 3, 1))
        self.assertEqual(struct.unpack_from("<QQ", data, 4096 * 3 + 16), (NONCE, 1))
        self.assertEqual(struct.unpack_from("<QQ", data, 4096 * 2 + 16), (0, 0))


class KillRequests(unittest.TestCase):
    def test_request_in_pieces_names_the_running_test(self):
        w = multihost.Watch(1, NONCE)
        self.assertFalse(w.feed("beluga-vm: begin mh-a\nPASS mh-a\nbeluga-vm: begin mh-k"))
        self.assertFalse(w.feed("ill\nbeluga-vm: kill-request 1 0123456789"))
        self.assertTrue(w.feed("abcdef\n"))
        self.assertEqual(w.kill_requested_during, "mh-kill")
        self.assertEqual(w.problems, [])

    def test_request_of_another_run_or_host_is_refused(self):
        w = multihost.Watch(1, NONCE)
        self.assertFalse(w.feed("beluga-vm: kill-request 1 0123456789abcdee\n"))
        self.assertFalse(w.feed("beluga-vm: kill-request 0 0123456789abcdef\n"))
        self.assertIsNone(w.kill_requested_during)
        self.assertEqual(len(w.problems), 2)


class Runs(unittest.TestCase):
    def test_all_guests_pass(self):
        rc, out, counts = run_runner("ok", hosts=3)
        self.assertEqual(rc, 0, out)
        self.assertEqual(counts[:4], ["6", "0", "0", "1"], out)

    def test_kill_on_request_marks_the_guest_gone_and_passes(self):
        rc, out, counts = run_runner("kill")
        self.assertEqual(rc, 0, out)
        self.assertIn("killed host 1's QEMU at the request of mh-x", out)
        self.assertIn("KILLED mh-x", out)
        self.assertEqual(counts[:4], ["3", "0", "0", "1"], out)

    def test_guest_that_dies_fails_and_its_peers_learn_it(self):
        rc, out, counts = run_runner("die")
        self.assertEqual(rc, 1, out)
        self.assertIn("no summary line", out)
        self.assertEqual(counts[:4], ["3", "1", "0", "0"], out)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--fake-mkinitramfs":
        sys.exit(fake_mkinitramfs(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "--fake-boot":
        sys.exit(fake_boot(sys.argv[2:]))
    unittest.main()
