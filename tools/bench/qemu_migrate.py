#!/usr/bin/env python3
"""The QEMU reference for tools/bench/migrate.sh: QEMU (Debian's qemu-system-x86, 7.2) migrates a
guest that has written all of its memory (tools/bench/guest/fill.S) over loopback TCP, unpaced,
plain or with TLS (tls-creds-x509), and prints one JSON line: QEMU's own figures from
query-migrate, and the CPU seconds each QEMU process spent during the migration.

Guest memory comes from hugetlbfs (/dev/hugepages), as ferry's benchmark VMs do, so both
destinations start from the same warm pool.

With --postcopy it is QEMU's post-copy (postcopy-ram, with postcopy-preempt and the destination's
postcopy-blocktime), switched to by migrate-start-postcopy once the first pass is over; with
--auto-converge its pre-copy throttles the guest; --bandwidth caps the stream in bytes/s.

usage: qemu_migrate.py <guest.elf> <MiB> <workdir> [--tls <certificate dir>] [--bandwidth B]
                       [--postcopy] [--auto-converge]"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

TICKS = os.sysconf("SC_CLK_TCK")


class Qmp:
    def __init__(self, path, deadline):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        self.file = self.sock.makefile("rw")
        self.file.readline()  # the greeting
        self.run("qmp_capabilities")

    def run(self, command, **arguments):
        self.file.write(json.dumps({"execute": command, "arguments": arguments}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")
            # an event: read on


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, all threads


def sweep_counter_address(guest):
    """The guest-physical address of the sweep guest's first page's write counter, or None
    for another guest."""
    out = subprocess.run(["nm", guest], capture_output=True, text=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == "_end" and "sweep" in os.path.basename(guest):
            return ((int(fields[0], 16) + 0xfff) & ~0xfff) + 16
    return None


def read_u32(qmp, address):
    """A 32-bit word of guest-physical memory, through the human monitor's xp."""
    text = qmp.run("human-monitor-command", **{"command-line": f"xp /1wx {address:#x}"})
    return int(text.split(":")[1].split()[0], 16)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("guest")
    parser.add_argument("mib", type=int)
    parser.add_argument("work")
    parser.add_argument("--tls")
    parser.add_argument("--bandwidth", type=int, default=100 << 30)  # unpaced by default
    parser.add_argument("--postcopy", action="store_true")
    parser.add_argument("--auto-converge", action="store_true")
    args = parser.parse_args()
    guest, mib, work, tls = args.guest, args.mib, args.work, args.tls
    port = 48000 + os.getpid() % 1000
    deadline = time.time() + 120
    procs = {}
    try:
        for role in ("source", "destination"):
            cmd = ["qemu-system-x86_64", "-accel", "kvm", "-machine", "pc,memory-backend=ram",
                   "-m", str(mib), "-object",
                   f"memory-backend-file,id=ram,size={mib}M,mem-path=/dev/hugepages,share=off",
                   "-kernel", guest, "-display", "none", "-nodefaults", "-serial", "none",
                   "-monitor", "none", "-debugcon", f"file:{work}/{role}.con",
                   "-qmp", f"unix:{work}/{role}.qmp,server=on,wait=off"]
            if tls:
                endpoint = "client" if role == "source" else "server"
                cmd += ["-object", f"tls-creds-x509,id=tls0,dir={tls},endpoint={endpoint},"
                                   "verify-peer=on"]
            if role == "destination":
                cmd += ["-incoming", "defer"]
            procs[role] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                           stderr=open(f"{work}/{role}.err", "w"))
        qmp = {role: Qmp(f"{work}/{role}.qmp", deadline) for role in procs}
        # The guest has written every page when it says so on its debug console.
        console = f"{work}/source.con"
        while not (os.path.exists(console) and "filled" in open(console).read()):
            if time.time() > deadline:
                raise RuntimeError("the guest never said it had filled its memory")
            time.sleep(0.1)
        time.sleep(1)
        # QEMU 7.2's default is 32 MiB/s: unpaced unless asked.
        parameters = {"max-bandwidth": args.bandwidth}
        if tls:
            parameters["tls-creds"] = "tls0"
        capabilities = []
        if args.postcopy:
            capabilities += [{"capability": "postcopy-ram", "state": True},
                             {"capability": "postcopy-preempt", "state": True}]
        if args.auto_converge:
            capabilities.append({"capability": "auto-converge", "state": True})
        for role in qmp:
            qmp[role].run("migrate-set-parameters", **parameters)
            wanted = capabilities + ([{"capability": "postcopy-blocktime", "state": True}]
                                     if args.postcopy and role == "destination" else [])
            if wanted:
                qmp[role].run("migrate-set-capabilities", capabilities=wanted)
        qmp["destination"].run("migrate-incoming", uri=f"tcp:127.0.0.1:{port}")
        cpu = {role: cpu_seconds(procs[role].pid) for role in procs}
        qmp["source"].run("migrate", uri=f"tcp:127.0.0.1:{port}")
        switched = False
        # The sweeping guest's progress through post-copy: its first page's write counter (the
        # sweeps it has made) on the paused source, then on the destination when the copy is
        # done, against the rate it sweeps at afterwards. QEMU's blocktime counts only the
        # faults userfaultfd saw; this counts what the guest did.
        counter_address = sweep_counter_address(guest)
        sweeps_at_pause = None
        while True:
            info = qmp["source"].run("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                break
            if (counter_address is not None and sweeps_at_pause is None and
                    info.get("status") == "postcopy-active"):
                sweeps_at_pause = read_u32(qmp["source"], counter_address)
                paused_at = time.time()
            # Post-copy once the first pass is over (its second dirty sync), as a user would.
            if (args.postcopy and not switched and info.get("status") == "active" and
                    info.get("ram", {}).get("dirty-sync-count", 0) >= 2):
                qmp["source"].run("migrate-start-postcopy")
                switched = True
            if time.time() > deadline:
                raise RuntimeError(f"still {info.get('status')} after the deadline")
            time.sleep(0.02)
        # The destination finishes loading a moment after the source says completed.
        while qmp["destination"].run("query-status")["status"] not in ("running", "paused",
                                                                         "postmigrate"):
            time.sleep(0.02)
        for role in procs:
            cpu[role] = cpu_seconds(procs[role].pid) - cpu[role]
        incoming = qmp["destination"].run("query-migrate")
        progress = postcopy_ms = None
        if sweeps_at_pause is not None:
            done_at, sweeps_done = time.time(), read_u32(qmp["destination"], counter_address)
            time.sleep(1)
            rate = (read_u32(qmp["destination"], counter_address) - sweeps_done) / (
                time.time() - done_at)
            postcopy_ms = (done_at - paused_at) * 1e3
            if rate > 0:
                progress = (sweeps_done - sweeps_at_pause) / (rate * (done_at - paused_at))
        ram = info.get("ram", {})
        print(json.dumps({"status": info.get("status"), "total_time_ms": info.get("total-time"),
                          "setup_time_ms": info.get("setup-time"),
                          "downtime_ms": info.get("downtime"),
                          "normal_bytes": ram.get("normal-bytes", 0),
                          "transferred": ram.get("transferred", 0),
                          "cpu_source": cpu["source"], "cpu_destination": cpu["destination"],
                          "throttle_percent": info.get("cpu-throttle-percentage", 0),
                          "postcopy_requests": ram.get("postcopy-requests"),
                          "postcopy_blocktime_ms": incoming.get("postcopy-blocktime"),
                          "postcopy_guest_progress": progress,
                          "postcopy_ms": postcopy_ms,
                          "error": info.get("error-desc")}))
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
