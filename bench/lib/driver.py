#!/usr/bin/env python3
"""credit_ledger benchmark driver (called by bench/run.sh on a running throwaway cluster).

Loads the data, runs the pgbench matrix with peers interleaved per round, checks the correctness
gate, and reports medians, ratios, targets, storage and backend memory. Standard library only.
"""

import argparse
import csv
import datetime as dt
import glob
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

PEER_ORDER = ["F1", "F2", "P1", "EXT"]

# ---------------------------------------------------------------------------------------------
# options


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-dir", required=True)
    ap.add_argument("--pg-bindir", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--pgdata", required=True)
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", required=True)
    ap.add_argument("--pg-version", default="15")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int)
    ap.add_argument("--clients")
    ap.add_argument("--workloads")
    ap.add_argument("--sync")
    ap.add_argument("--peers")
    ap.add_argument("--memory-calls", type=int)
    ap.add_argument("--sampling-rate", type=float, default=0.2)
    ap.add_argument("--shared-buffers")  # consumed by run.sh
    ap.add_argument("--stack-wallets", type=int)
    ap.add_argument("--w6-wallets", type=int, default=1_000_000)
    # an older build of the extension installed side by side under another name (its Cargo
    # package and control file renamed, e.g. credit_ledger_old): W1 then also runs on a
    # database of its own with that extension, interleaved with W1's cells in every round
    ap.add_argument("--old-ext")
    a = ap.parse_args()
    if a.quick:
        a.rounds = a.rounds or 1
        a.duration = a.duration or 3
        a.clients = a.clients or "1,8"
        a.workloads = a.workloads or "W1,W2,W3,W4,W5,W7,W8,W9"
        a.memory_calls = 50_000 if a.memory_calls is None else a.memory_calls
        a.stack_wallets = a.stack_wallets or 100
    else:
        a.rounds = a.rounds or 3
        a.duration = a.duration or 5
        a.clients = a.clients or "1,8,16"
        a.workloads = a.workloads or "W1,W2,W3,W4,W5,W6,W7,W8,W9"
        a.memory_calls = 1_000_000 if a.memory_calls is None else a.memory_calls
        a.stack_wallets = a.stack_wallets or 1000
    a.sync = a.sync or "on,off"
    a.peers = a.peers or ",".join(PEER_ORDER)
    a.clients = [int(x) for x in a.clients.split(",") if x]
    a.workloads = [x.strip().upper() for x in a.workloads.split(",") if x]
    a.sync = [x.strip() for x in a.sync.split(",") if x]
    a.peers = [x.strip().upper() for x in a.peers.split(",") if x]
    return a


A = parse_args()
BENCH = A.bench_dir
BIN = A.pg_bindir
ENV = dict(os.environ, PGHOST=A.host, PGPORT=str(A.port), PGUSER="postgres")
ENV.pop("PGOPTIONS", None)
RUNDIR = os.path.join(A.base, "runs")
os.makedirs(RUNDIR, exist_ok=True)
STAMP = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
TIER = "quick" if A.quick else "full"
RESULTS = os.path.join(BENCH, "results")
os.makedirs(RESULTS, exist_ok=True)
REPORT_LINES = []


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def out(line=""):
    print(line, flush=True)
    REPORT_LINES.append(line)


def fail(msg):
    print(f"[bench] FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ---------------------------------------------------------------------------------------------
# psql helpers


def psql(db, sql=None, file=None, variables=None, check=True, quiet=True):
    cmd = [os.path.join(BIN, "psql"), "-X", "-v", "ON_ERROR_STOP=1", "-d", db]
    if quiet:
        cmd += ["-q"]
    for k, v in (variables or {}).items():
        cmd += ["-v", f"{k}={v}"]
    if sql is not None:
        cmd += ["-c", sql]
    if file is not None:
        cmd += ["-f", file]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    if check and r.returncode != 0:
        fail(f"psql {db}: {sql or file}\n{r.stdout}\n{r.stderr}")
    return r


def scalar(db, sql):
    cmd = [os.path.join(BIN, "psql"), "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"psql {db}: {sql}\n{r.stderr}")
    return r.stdout.strip()


def rows(db, sql):
    s = scalar(db, sql)
    return [line.split("|") for line in s.splitlines() if line]


def has_ext():
    return "EXT" in A.peers


# ---------------------------------------------------------------------------------------------
# data


LOAD_WINDOW = 25000


def load_db(db, nw, extra, ns, ext="credit_ledger"):
    """Create database db with floors, the PL/pgSQL peer and the extension, and load the plan
    through each peer's own functions, in windows of LOAD_WINDOW plan rows (one statement per
    window and step, ANALYZE after the first window so plans see the tables grow)."""
    psql("postgres", f"CREATE DATABASE {db}")
    t0 = time.time()
    psql(db, file=os.path.join(BENCH, "sql", "floors.sql"), variables={"nw": nw})
    psql(db, file=os.path.join(BENCH, "plpgsql_ledger.sql"))
    psql(db, file=os.path.join(BENCH, "sql", "plan.sql"),
         variables={"nw": nw, "ns": ns, "extra": 1 if extra else 0})
    # a grant's wallet always comes first in plan order, so window k of wallets + grants is complete
    bad = scalar(db, "SELECT count(*) FROM plan.grants g JOIN plan.wallets w USING (wallet) WHERE w.seq > g.seq")
    if bad != "0":
        fail(f"{db}: plan order broken ({bad} grants before their wallet)")
    n_rows = int(scalar(db, "SELECT greatest((SELECT max(seq) FROM plan.wallets), (SELECT max(seq) FROM plan.grants))"))
    n_calls = int(scalar(db, "SELECT coalesce(max(seq), 0) FROM plan.calls"))
    if has_ext():
        psql(db, f"CREATE EXTENSION {ext}")
    timings = {}
    for peer, fname, tables in (("P1", "load_p1.sql", "p1.wallets, p1.grants, p1.journal, p1.authorizations"),
                                ("EXT", "load_ext.sql", "credit_ledger.wallets, credit_ledger.grants, "
                                                        "credit_ledger.journal, credit_ledger.authorizations")):
        if peer not in A.peers:
            continue
        t = time.time()
        windows = [(lo, min(lo + LOAD_WINDOW - 1, n_rows), 1, 0) for lo in range(1, n_rows + 1, LOAD_WINDOW)]
        windows += [(1, 0, lo, min(lo + LOAD_WINDOW - 1, n_calls)) for lo in range(1, n_calls + 1, LOAD_WINDOW)]
        for i, (lo, hi, clo, chi) in enumerate(windows):
            psql(db, file=os.path.join(BENCH, "sql", fname), variables={"lo": lo, "hi": hi, "clo": clo, "chi": chi})
            if i == 0:
                psql(db, f"ANALYZE {tables}")
            if len(windows) > 8 and (i + 1) % 8 == 0:
                log(f"  {db} {peer}: window {i + 1}/{len(windows)} ({time.time() - t:.0f} s)")
        timings[peer] = time.time() - t
    psql(db, "VACUUM (ANALYZE)")
    psql(db, "CHECKPOINT")
    log(f"loaded {db}: {nw} W1-shape wallets{' + hot/stacks/retry keys' if extra else ''} in "
        f"{time.time() - t0:.0f} s (" + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ")")
    return timings


def counts(db):
    """Rows in every peer's append-only tables (for the per-run gate and storage)."""
    q = []
    if "F2" in A.peers:
        q.append("(SELECT coalesce(max(id), 0) FROM f2.journal)")
    else:
        q.append("0")
    q.append("(SELECT coalesce(max(id), 0) FROM p1.authorizations)" if "P1" in A.peers else "0")
    q.append("(SELECT coalesce(max(id), 0) FROM credit_ledger.authorizations)" if has_ext() else "0")
    v = scalar(db, "SELECT " + ", ".join(q)).split("|")
    return {"F2": int(v[0]), "P1": int(v[1]), "EXT": int(v[2])}


def new_rows(db, peer, since):
    table = {"F2": "f2.journal", "P1": "p1.authorizations", "EXT": "credit_ledger.authorizations"}.get(peer)
    if table is None:
        return None
    return int(scalar(db, f"SELECT count(*) FROM {table} WHERE id > {since}"))


STORAGE_TABLES = {
    "F2": ["f2.journal"],
    "P1": ["p1.journal", "p1.authorizations"],
    "EXT": ["credit_ledger.journal", "credit_ledger.authorizations"],
}
JOURNAL = {"F2": "f2.journal", "P1": "p1.journal", "EXT": "credit_ledger.journal"}
AUTHS = {"F2": "f2.journal", "P1": "p1.authorizations", "EXT": "credit_ledger.authorizations"}


def storage(db):
    res = {}
    for peer, tables in STORAGE_TABLES.items():
        if peer not in A.peers:
            continue
        size = int(scalar(db, "SELECT " + " + ".join(f"pg_total_relation_size('{t}')" for t in tables)))
        j = int(scalar(db, f"SELECT count(*) FROM {JOURNAL[peer]}"))
        a = int(scalar(db, f"SELECT count(*) FROM {AUTHS[peer]}"))
        res[peer] = (size, j, a)
    return res


# ---------------------------------------------------------------------------------------------
# workloads: (name, variants); a variant = (label, db, peers->(script, vars), calls per txn)


def workloads(ns, w6):
    auth = {"F2": "auth_F2", "P1": "auth_P1", "EXT": "auth_EXT"}
    W = {}
    W["W1"] = ("many wallets (10k, 1-3 grants), uniform",
               [("10k", "bench", {p: (auth[p], {"nw": 10000, "pfx": "w"}) for p in ("F2", "P1", "EXT")}, 1)])
    if A.old_ext:
        W["W1"][1].append(("10k old", "bench_old", {p: (auth[p], {"nw": 10000, "pfx": "w"}) for p in ("P1", "EXT")}, 1))
    hot = {"F1": ("F1", {})}
    hot.update({p: (auth[p], {"nw": 1, "pfx": "h"}) for p in ("F2", "P1", "EXT")})
    W["W2"] = ("one hot wallet, all clients on it", [("hot", "bench", hot, 1)])
    stacks = [("s1", "s1_"), ("s10", "s10_"), ("s100", "s100_"), ("frag", "f_")]
    if A.quick:
        stacks = [("s1", "s1_"), ("s100", "s100_"), ("frag", "f_")]
    W["W3"] = ("grant stacks: 1, 10, 100 live grants; frag = 100 grants, 90 oldest exhausted",
               [(lab, "bench", {p: (auth[p], {"nw": ns, "pfx": pfx}) for p in ("P1", "EXT")}, 1)
                for lab, pfx in stacks])
    W["W4"] = ("hold, then capture in the next transaction (1 pgbench txn = 2 calls)",
               [("hold+capture", "bench", {p: (f"hold_{p}", {"nw": 10000, "pfx": "w"}) for p in ("P1", "EXT")}, 2)])
    W["W5"] = ("keyed calls, 10% retries of a used key",
               [("10% retries", "bench", {p: (f"retry_{p}", {"nw": 10000, "pfx": "w"}) for p in ("P1", "EXT")}, 1)])
    W["W6"] = ("scale: 10k vs 1M wallets (same shape, separate databases)",
               [("10k", "bench_w6_10k", {p: (auth[p], {"nw": 10000, "pfx": "w"}) for p in ("F2", "P1", "EXT")}, 1),
                (label_n(w6), "bench_w6_big", {p: (auth[p], {"nw": w6, "pfx": "w"}) for p in ("F2", "P1", "EXT")}, 1)])
    # issue 17: a hot team pool (16 members, no own grants) and long transactions (32 callers on
    # one pool, 0.2 s inside each transaction); 'pool' has 48 lanes, 'pool1' one lane (0.3.0)
    # W7's own '10k' variant is W1's EXT cell interleaved with the pool cells in every round, so
    # the pool/W1 ratio compares cells measured side by side (W1 itself runs minutes earlier)
    W["W7"] = ("hot pool: members without own grants debit one pool (client i = member i)",
               [("10k", "bench", {"EXT": (auth["EXT"], {"nw": 10000, "pfx": "w"})}, 1),
                ("pool", "bench", {"F1": ("F1", {}), "EXT": ("pool_EXT", {"nm": 16, "pfx": "plm"})}, 1),
                ("pool1", "bench", {"EXT": ("pool_EXT", {"nm": 16, "pfx": "p1m"})}, 1),
                ("capped pool", "bench", {"EXT": ("pool_EXT", {"nm": 16, "pfx": "pcm"})}, 1),
                # two clients per member (two tabs of one user): free members do not wait
                ("2 per member", "bench", {"EXT": ("pool_EXT", {"nm": 8, "pfx": "plm"})}, 1),
                # the same with a pool limit on every member (0.11.0: limited members)
                ("limited 2/member", "bench", {"EXT": ("pool_EXT", {"nm": 8, "pfx": "pmm"})}, 1)])
    W["W8"] = ("long transactions: 32 clients on one pool, authorize + 0.2 s + commit",
               [("pool", "bench", {"EXT": ("long_EXT", {"nm": 32, "pfx": "plm"})}, 1),
                ("pool1", "bench", {"EXT": ("long_EXT", {"nm": 32, "pfx": "p1m"})}, 1),
                ("capped pool", "bench", {"EXT": ("long_EXT", {"nm": 32, "pfx": "pcm"})}, 1),
                ("2 per member", "bench", {"EXT": ("long_EXT", {"nm": 16, "pfx": "plm"})}, 1),
                ("limited 2/member", "bench", {"EXT": ("long_EXT", {"nm": 16, "pfx": "pmm"})}, 1)])
    # issue 18: 16 members each call inside its own agent run (funded from a pool) vs the same
    # calls made directly against a pool with lanes (W7's 'pool'), interleaved in every round
    W["W9"] = ("agent runs: client i calls inside member i's run vs directly on the pool",
               [("run", "bench", {"EXT": ("run_EXT", {"nm": 16, "pfx": "r9m"})}, 1),
                ("shared run", "bench", {"EXT": ("run_shared_EXT", {})}, 1),
                ("pool", "bench", {"EXT": ("pool_EXT", {"nm": 16, "pfx": "plm"})}, 1)])
    return W


W8_CLIENTS = 32


def label_n(n):
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else (f"{n // 1000}k" if n % 1000 == 0 else str(n))


# ---------------------------------------------------------------------------------------------
# one pgbench run


def wal_stats(lsn0, lsn1):
    """(total bytes, fpi bytes) of WAL between two LSNs, from pg_waldump --stats."""
    cmd = [os.path.join(BIN, "pg_waldump"), "-p", os.path.join(A.pgdata, "pg_wal"), "-s", lsn0, "-e", lsn1,
           "--stats"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.startswith("Total"):
            nums = re.findall(r"(\d+)\s+\[", line)
            # Total  <count>  <record bytes> [..%]  <fpi bytes> [..%]  <combined> [..%]
            if len(nums) >= 3:
                return int(nums[-1]), int(nums[-2])
    return None, None


def percentiles(logfiles, calls):
    lat = []
    for f in logfiles:
        with open(f) as fh:
            for line in fh:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    lat.append(int(parts[2]))
    if not lat:
        return None, None, 0
    lat.sort()

    def pct(p):
        k = min(len(lat) - 1, max(0, int(round(p / 100.0 * len(lat) + 0.5)) - 1))
        return lat[k] / 1000.0

    return pct(50), pct(99), len(lat)


def pgbench(db, script, variables, clients, seconds, sync, tag, transactions=None):
    logdir = os.path.join(RUNDIR, tag)
    os.makedirs(logdir, exist_ok=True)
    cmd = [os.path.join(BIN, "pgbench"), "-n", "-M", "prepared", "-c", str(clients),
           "-j", str(min(clients, 2)), "-f", os.path.join(BENCH, "scripts", script + ".sql"),
           "--log", f"--log-prefix={os.path.join(logdir, 'tx')}", f"--sampling-rate={A.sampling_rate}"]
    cmd += ["-t", str(transactions)] if transactions else ["-T", str(seconds)]
    for k, v in variables.items():
        cmd += ["-D", f"{k}={v}"]
    cmd.append(db)
    env = dict(ENV, PGOPTIONS=f"-c synchronous_commit={sync}")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    return r, logdir


def parse_pgbench(text):
    m = re.search(r"number of transactions actually processed: (\d+)", text)
    n = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", text)
    failed = int(m.group(1)) if m else 0
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    tps = float(m.group(1)) if m else 0.0
    m = re.search(r"latency average = ([\d.]+) ms", text)
    avg = float(m.group(1)) if m else None
    return n, failed, tps, avg


def run_cell(wl, variant, peer, script, variables, db, clients, sync, rnd, calls):
    tag = f"{wl}-{variant}-{peer}-{sync}-c{clients}-r{rnd}".replace(" ", "_").replace("%", "pct").replace("+", "_")
    psql(db, "CHECKPOINT")
    before = counts(db)
    lsn0 = scalar(db, "SELECT pg_current_wal_lsn()")
    r, logdir = pgbench(db, script, variables, clients, A.duration, sync, tag)
    lsn1 = scalar(db, "SELECT pg_current_wal_lsn()")
    text = r.stdout + r.stderr
    n, failed, tps, avg = parse_pgbench(text)
    if r.returncode != 0 or failed or n == 0:
        fail(f"pgbench {tag} failed (exit {r.returncode}, {failed} failed transactions):\n{text[-3000:]}")
    logs = glob.glob(os.path.join(logdir, "tx*"))
    p50, p99, samples = percentiles(logs, calls)
    shutil.rmtree(logdir, ignore_errors=True)
    wal, fpi = wal_stats(lsn0, lsn1)
    if wal is None:
        wal = int(scalar(db, f"SELECT pg_wal_lsn_diff('{lsn1}', '{lsn0}')"))
        fpi = None
    # gate per run: every call left exactly one authorization (W5: retries leave none; W4: one per
    # hold+capture pair); pgbench may count up to one in-flight transaction per client less.
    added = new_rows(db, peer, before.get(peer, 0))
    if added is not None:
        if wl == "W5":
            ok = 0.8 * n <= added <= n + clients
        else:
            ok = n <= added <= n + clients
        if not ok:
            fail(f"{tag}: pgbench processed {n} transactions but {added} new authorization/journal rows appeared")
    row = {
        "tier": TIER, "workload": wl, "variant": variant, "peer": peer, "sync": sync,
        "clients": clients, "round": rnd, "seconds": A.duration, "transactions": n,
        "calls_per_txn": calls, "tps": round(tps, 1),
        "calls_per_s": round(tps * calls, 1),
        "lat_avg_ms": avg, "p50_ms": p50, "p99_ms": p99, "lat_samples": samples,
        "wal_bytes_per_txn": round(wal / n, 1) if n else None,
        "wal_bytes_per_txn_no_fpi": round((wal - fpi) / n, 1) if (n and fpi is not None) else None,
        "new_rows": added,
    }
    log(f"{wl:<3} {variant:<12} {peer:<3} sync={sync:<3} c={clients:<2} r{rnd}: "
        f"{tps:9.1f} tps  p50 {fmt(p50)} p99 {fmt(p99)} ms  WAL {row['wal_bytes_per_txn']} B/txn")
    return row


def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


# ---------------------------------------------------------------------------------------------
# memory: backend RSS growth over N calls in one session


def rss_anon(pid):
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])  # kB
    except OSError:
        return None
    return None


def memory_check(peer, calls):
    script = "auth_EXT" if peer == "EXT" else "auth_P1"
    cmd = [os.path.join(BIN, "pgbench"), "-n", "-M", "prepared", "-c", "1", "-j", "1", "-t", str(calls),
           "-f", os.path.join(BENCH, "scripts", script + ".sql"), "-D", "nw=10000", "-D", "pfx=w", "bench"]
    app = f"bench_memory_{peer}"
    env = dict(ENV, PGOPTIONS="-c synchronous_commit=off", PGAPPNAME=app)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pid = None
    first = last = peak = None
    t0 = time.time()
    deadline = t0 + 3600
    while proc.poll() is None and time.time() < deadline:
        if pid is None:
            s = scalar("postgres", f"SELECT pid FROM pg_stat_activity WHERE application_name = '{app}' LIMIT 1")
            pid = int(s) if s else None
            if pid:
                time.sleep(2.0)  # let caches warm (first calls prepare plans)
                first = rss_anon(pid)
                if first is None:
                    pid = None
        else:
            v = rss_anon(pid)
            if v is not None:
                last = v
                peak = max(peak or 0, v)
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    text = proc.communicate()[0]
    n, failed, tps, _ = parse_pgbench(text)
    if proc.returncode != 0 or failed:
        fail(f"memory check {peer}: pgbench failed\n{text[-2000:]}")
    return {"peer": peer, "calls": n, "rss_anon_first_kb": first, "rss_anon_last_kb": last,
            "rss_anon_peak_kb": peak, "growth_kb": (last - first) if (first and last) else None,
            "seconds": round(time.time() - t0, 1)}


# ---------------------------------------------------------------------------------------------
# gate


def gate(db):
    r = psql(db, file=os.path.join(BENCH, "sql", "gate.sql"),
             variables={"p1": 1 if "P1" in A.peers else 0, "ext": 1 if has_ext() else 0,
                        "f2": 1 if "F2" in A.peers else 0},
             check=False, quiet=True)
    text = (r.stdout + r.stderr).strip()
    return r.returncode == 0, text


# ---------------------------------------------------------------------------------------------
# report


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main():
    wanted = workloads(A.stack_wallets, A.w6_wallets)
    for w in A.workloads:
        if w not in wanted:
            fail(f"unknown workload {w}")
    uname = platform.uname()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            m = re.search(r"model name\s*:\s*(.*)", fh.read())
            cpu = m.group(1) if m else ""
    except OSError:
        pass
    machine = f"{uname.node}, {os.cpu_count()} cores ({cpu}), {uname.system} {uname.release}"
    pgv = scalar("postgres", "SELECT version()")

    # ---- load
    need_small = any(w in A.workloads for w in ("W1", "W2", "W3", "W4", "W5", "W7", "W8", "W9")) or A.memory_calls
    if need_small:
        load_db("bench", 10000, True, A.stack_wallets)
        if any(w in A.workloads for w in ("W7", "W8", "W9")) and "EXT" in A.peers:
            psql("bench", file=os.path.join(BENCH, "sql", "load_pool.sql"))
            if "W9" in A.workloads:
                psql("bench", file=os.path.join(BENCH, "sql", "load_runs.sql"))
            psql("bench", "VACUUM (ANALYZE)")
    if A.old_ext and "W1" in A.workloads:
        load_db("bench_old", 10000, False, 0, ext=A.old_ext)
    if "W6" in A.workloads:
        load_db("bench_w6_10k", 10000, False, 0)
        load_db("bench_w6_big", A.w6_wallets, False, 0)
    storage0 = storage("bench") if need_small else {}

    # ---- matrix
    runs = []
    t_start = time.time()
    for wl in A.workloads:
        desc, variants = wanted[wl]
        # W8 is defined at 32 clients, synchronous_commit = on
        for sync in (["on"] if wl == "W8" else A.sync):
            for clients in ([W8_CLIENTS] if wl == "W8" else A.clients):
                for rnd in range(1, A.rounds + 1):
                    for (variant, db, peers, calls) in variants:
                        for peer in PEER_ORDER:
                            if peer not in peers or peer not in A.peers:
                                continue
                            script, variables = peers[peer]
                            runs.append(run_cell(wl, variant, peer, script, variables, db, clients, sync,
                                                 rnd, calls))
    matrix_s = time.time() - t_start

    # ---- memory
    mem = []
    if A.memory_calls and need_small:
        for peer in ("EXT", "P1"):
            if peer in A.peers:
                log(f"memory: {A.memory_calls} calls in one session ({peer}) ...")
                mem.append(memory_check(peer, A.memory_calls))

    # ---- gate
    gate_ok = True
    gate_text = []
    for db in ([("bench")] if need_small else []) + (["bench_old"] if (A.old_ext and "W1" in A.workloads) else []) \
            + (["bench_w6_10k", "bench_w6_big"] if "W6" in A.workloads else []):
        ok, text = gate(db)
        gate_ok &= ok
        gate_text.append(f"-- {db}: {'ok' if ok else 'FAILED'}\n{text}")
    storage1 = storage("bench") if need_small else {}

    # ---- medians
    keys = []
    groups = {}
    for r in runs:
        k = (r["workload"], r["variant"], r["sync"], r["clients"], r["peer"])
        if k not in groups:
            keys.append(k)
            groups[k] = []
        groups[k].append(r)
    med = {}
    for k in keys:
        g = groups[k]
        med[k] = {
            "tps": median([x["tps"] for x in g]),
            "calls_per_s": median([x["calls_per_s"] for x in g]),
            "p50_ms": median([x["p50_ms"] for x in g]),
            "p99_ms": median([x["p99_ms"] for x in g]),
            "wal": median([x["wal_bytes_per_txn"] for x in g]),
            "wal_nofpi": median([x["wal_bytes_per_txn_no_fpi"] for x in g]),
            "rounds": len(g),
        }

    # ---- write CSVs
    runs_csv = os.path.join(RESULTS, f"{STAMP}-{TIER}-runs.csv")
    with open(runs_csv, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(runs[0].keys()) if runs else ["none"])
        w.writeheader()
        for r in runs:
            w.writerow(r)
    med_csv = os.path.join(RESULTS, f"{STAMP}-{TIER}.csv")
    with open(med_csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["workload", "variant", "sync", "clients", "peer", "rounds", "tps_median", "calls_per_s",
                    "p50_ms", "p99_ms", "wal_bytes_per_txn", "wal_bytes_per_txn_no_fpi",
                    "ratio_to_F1", "ratio_to_F2", "ratio_to_P1"])
        for k in keys:
            m = med[k]
            rat = ratios(med, k)
            w.writerow(list(k) + [m["rounds"], m["tps"], m["calls_per_s"], m["p50_ms"], m["p99_ms"], m["wal"],
                                  m["wal_nofpi"]] + [rat.get(p) for p in ("F1", "F2", "P1")])

    # ---- print
    out("")
    out(f"credit_ledger benchmark — {TIER} tier, {STAMP}")
    out(f"machine: {machine}")
    out(f"server:  {pgv}")
    out(f"cells:   {A.duration} s each, {A.rounds} round(s), median of rounds; pgbench -M prepared over a "
        f"Unix socket; latency percentiles from --log --sampling-rate={A.sampling_rate}")
    out(f"matrix:  {len(runs)} pgbench runs in {matrix_s / 60:.1f} min")
    out("")
    hdr = (f"{'workload':<4} {'variant':<12} {'sync':<4} {'cl':>3} {'peer':<4} {'tps':>9} {'p50 ms':>7} "
           f"{'p99 ms':>7} {'WAL B/tx':>9} {'noFPI':>7}  {'xF1':>5} {'xF2':>5} {'xP1':>5}")
    out(hdr)
    out("-" * len(hdr))
    prev = None
    for k in keys:
        m = med[k]
        cell = k[:4]
        if prev is not None and cell[:2] != prev[:2]:
            out("")
        rat = ratios(med, k)
        out(f"{k[0]:<4} {k[1]:<12} {k[2]:<4} {k[3]:>3} {k[4]:<4} {fmt(m['tps'], 0):>9} {fmt(m['p50_ms']):>7} "
            f"{fmt(m['p99_ms']):>7} {fmt(m['wal'], 0):>9} {fmt(m['wal_nofpi'], 0):>7}  "
            f"{fmt(rat.get('F1')):>5} {fmt(rat.get('F2')):>5} {fmt(rat.get('P1')):>5}")
        prev = cell
    out("")
    out("xF1/xF2/xP1 = this peer's median TPS / that peer's median TPS in the same cell (same run). "
        "W4: one pgbench txn = hold + capture (2 calls, 2 transactions).")
    out("WAL B/tx = WAL bytes per pgbench transaction (noFPI: without full-page images; every cell starts "
        "right after a CHECKPOINT).")

    # targets
    out("")
    out("targets (EXT vs peers measured in this run):")
    for line in targets(med):
        out("  " + line)

    # storage
    if storage0 and storage1:
        out("")
        out("storage: append-only tables + their indexes (journal, authorizations), growth during the run")
        out(f"  {'peer':<4} {'bytes':>12} {'journal rows':>13} {'auth rows':>10} {'B/journal row':>14} "
            f"{'MB per 1M journal rows':>23} {'MB per 1M ops':>14}")
        for peer in ("F2", "P1", "EXT"):
            if peer in storage0 and peer in storage1:
                db_ = storage1[peer][0] - storage0[peer][0]
                dj = storage1[peer][1] - storage0[peer][1]
                da = storage1[peer][2] - storage0[peer][2]
                if dj > 0 and da > 0:
                    out(f"  {peer:<4} {db_:>12} {dj:>13} {da:>10} {db_ / dj:>14.0f} {db_ / dj:>23.0f} "
                        f"{db_ / da:>14.0f}")
        out("  (bytes per row = MB per 1M rows; F2's op is its journal row; ops = authorizations)")

    # memory
    if mem:
        out("")
        out("backend memory (RssAnon of the one backend, after 2 s warm-up vs at the end):")
        for m in mem:
            g = m["growth_kb"]
            status = ""
            if m["peer"] == "EXT" and g is not None:
                scaled = g * (1_000_000 / max(1, m["calls"]))
                status = f"  target <= 8 MB per 1M calls: {'PASS' if scaled <= 8192 else 'FAIL'}" + \
                         (f" (scaled from {m['calls']} calls: {scaled / 1024:.1f} MB)" if m["calls"] != 1_000_000 else "")
            out(f"  {m['peer']:<4} {m['calls']} calls in {m['seconds']} s: {m['rss_anon_first_kb']} kB -> "
                f"{m['rss_anon_last_kb']} kB (peak {m['rss_anon_peak_kb']} kB), growth "
                f"{g if g is not None else '?'} kB{status}")

    out("")
    out("correctness gate: " + ("PASS" if gate_ok else "FAIL"))
    for t in gate_text:
        for line in t.splitlines():
            out("  " + line)
    out("")
    out(f"csv: {med_csv}")
    out(f"     {runs_csv}")
    with open(os.path.join(RESULTS, f"{STAMP}-{TIER}.txt"), "w") as fh:
        fh.write("\n".join(REPORT_LINES) + "\n")
    if not gate_ok:
        fail("correctness gate failed")


def ratios(med, k):
    res = {}
    mine = med[k]["tps"]
    for p in ("F1", "F2", "P1"):
        if p == k[4]:
            continue
        o = med.get(k[:4] + (p,))
        if o and o["tps"] and mine:
            res[p] = mine / o["tps"]
    return res


def targets(med):
    lines = []
    cls = sorted({k[3] for k in med})
    top = max(cls) if cls else None
    note = "" if top == 16 else f" (16 clients not measured: at {top})"

    def tps(wl, var, sync, c, peer):
        m = med.get((wl, var, sync, c, peer))
        return m["tps"] if m else None

    def check(label, value, op, goal, extra=""):
        if value is None:
            lines.append(f"{label:<58} n/a")
            return
        ok = value >= goal if op == ">=" else value <= goal
        lines.append(f"{label:<58} {value:6.2f}  target {op} {goal:<4} {'PASS' if ok else 'FAIL'}{extra}")

    def ratio(a, b):
        return a / b if (a and b) else None

    if top:
        check(f"W1 sync on,  {top} cl: EXT / F2{note}", ratio(tps("W1", "10k", "on", top, "EXT"),
                                                           tps("W1", "10k", "on", top, "F2")), ">=", 0.7)
        check(f"W1 sync off, {top} cl: EXT / P1{note}", ratio(tps("W1", "10k", "off", top, "EXT"),
                                                           tps("W1", "10k", "off", top, "P1")), ">=", 1.3)
        r_p1 = ratio(tps("W2", "hot", "on", top, "EXT"), tps("W2", "hot", "on", top, "P1"))
        check(f"W2 sync on,  {top} cl: EXT / F1{note}", ratio(tps("W2", "hot", "on", top, "EXT"),
                                                           tps("W2", "hot", "on", top, "F1")), ">=", 0.8,
              f"   (EXT / P1 = {fmt(r_p1)})")
    # issue 17: the common case does not regress: W1 EXT/P1 of this build vs the older build's
    # EXT/P1, both in every round of this run
    for sync in A.sync:
        new, old = (ratio(tps("W1", v, sync, top, "EXT"), tps("W1", v, sync, top, "P1")) for v in ("10k", "10k old"))
        if new and old:
            check(f"W1 sync {sync:<3} {top} cl: EXT/P1 this build / {A.old_ext}", new / old, ">=", 0.9,
                  f"   ({fmt(new)} vs {fmt(old)})")
    # issue 17: a pool costs no more than independent wallets; long transactions do not serialize
    for sync in ("on", "off"):
        c7 = 16 if tps("W7", "pool", sync, 16, "EXT") else top
        if tps("W7", "pool", sync, c7, "EXT") is None:
            continue
        goal = " (target at 16 cl, sync on)" if (sync, c7) != ("on", 16) else ""
        check(f"W7 sync {sync:<3} {c7} cl: pool EXT / W1 EXT (interleaved){goal}",
              ratio(tps("W7", "pool", sync, c7, "EXT"), tps("W7", "10k", sync, c7, "EXT")), ">=", 0.9)
        check(f"W7 sync {sync:<3} {c7} cl: pool EXT / F1", ratio(tps("W7", "pool", sync, c7, "EXT"),
                                                              tps("W7", "pool", sync, c7, "F1")), ">=", 1.0,
              f"   (one-lane pool / F1 = {fmt(ratio(tps('W7', 'pool1', sync, c7, 'EXT'), tps('W7', 'pool', sync, c7, 'F1')))})")
        # 0.10.0: a spend cap sliced over the lanes does not make the pool one hot row again
        if tps("W7", "capped pool", sync, c7, "EXT") is not None:
            check(f"W7 sync {sync:<3} {c7} cl: capped pool EXT / pool EXT",
                  ratio(tps("W7", "capped pool", sync, c7, "EXT"), tps("W7", "pool", sync, c7, "EXT")), ">=", 0.9)
        # issue 17: two clients of one member (free members) cost no more than two members
        if tps("W7", "2 per member", sync, c7, "EXT") is not None:
            check(f"W7 sync {sync:<3} {c7} cl: 2 clients per member EXT / pool EXT",
                  ratio(tps("W7", "2 per member", sync, c7, "EXT"), tps("W7", "pool", sync, c7, "EXT")), ">=", 0.9)
        # 0.11.0: the same with a pool limit on every member (limited members: one more read and
        # one more update of the member's room per call)
        if tps("W7", "limited 2/member", sync, c7, "EXT") is not None:
            check(f"W7 sync {sync:<3} {c7} cl: limited members, 2 clients each EXT / 2 per member",
                  ratio(tps("W7", "limited 2/member", sync, c7, "EXT"),
                        tps("W7", "2 per member", sync, c7, "EXT")), ">=", 0.8)
    if tps("W8", "pool", "on", W8_CLIENTS, "EXT") is not None:
        lines.append(f"{'W8 sync on, 32 cl: transactions/s, 48 lanes':<58} "
                     f"{tps('W8', 'pool', 'on', W8_CLIENTS, 'EXT'):6.1f}  target >= 100  "
                     f"{'PASS' if tps('W8', 'pool', 'on', W8_CLIENTS, 'EXT') >= 100 else 'FAIL'}"
                     f"   (one lane: {fmt(tps('W8', 'pool1', 'on', W8_CLIENTS, 'EXT'), 1)}/s; ideal 160/s)")
    if tps("W8", "capped pool", "on", W8_CLIENTS, "EXT") is not None:
        # 0.10.0: the same with a spend cap on the pool, sliced over its lanes
        capped = tps("W8", "capped pool", "on", W8_CLIENTS, "EXT")
        lines.append(f"{'W8 sync on, 32 cl: transactions/s, 48 lanes, capped pool':<58} "
                     f"{capped:6.1f}  target >= 100  {'PASS' if capped >= 100 else 'FAIL'}")
    if tps("W8", "2 per member", "on", W8_CLIENTS, "EXT") is not None:
        # two callers per member: a member's calls do not wait for each other (free members)
        two = tps("W8", "2 per member", "on", W8_CLIENTS, "EXT")
        lines.append(f"{'W8 sync on, 32 cl: transactions/s, 2 callers per member':<58} "
                     f"{two:6.1f}  target >= 100  {'PASS' if two >= 100 else 'FAIL'}")
    if tps("W8", "limited 2/member", "on", W8_CLIENTS, "EXT") is not None:
        # 0.11.0: two callers per member, each member with a pool limit (limited members)
        lim = tps("W8", "limited 2/member", "on", W8_CLIENTS, "EXT")
        lines.append(f"{'W8 sync on, 32 cl: transactions/s, 2 per limited member':<58} "
                     f"{lim:6.1f}  target >= 100  {'PASS' if lim >= 100 else 'FAIL'}")
    # issue 18: a call inside an agent run costs less than the same call on the pool
    for sync in ("on", "off"):
        c9 = 16 if tps("W9", "run", sync, 16, "EXT") else top
        if tps("W9", "run", sync, c9, "EXT") is None:
            continue
        check(f"W9 sync {sync:<3} {c9} cl: in a run / directly on the pool (interleaved)",
              ratio(tps("W9", "run", sync, c9, "EXT"), tps("W9", "pool", sync, c9, "EXT")), ">=", 1.0,
              f"   (one shared run, 32 lanes / pool = "
              f"{fmt(ratio(tps('W9', 'shared run', sync, c9, 'EXT'), tps('W9', 'pool', sync, c9, 'EXT')))})")
    # cost per call = 1 / TPS at 1 client, sync off (CPU view)
    for var in ("s100", "frag"):
        check(f"W3 sync off, 1 cl: cost per call {var} / s1",
              ratio(tps("W3", "s1", "off", 1, "EXT"), tps("W3", var, "off", 1, "EXT")), "<=", 1.3)
    big = label_n(A.w6_wallets)
    check(f"W6 sync off, 1 cl: cost per call {big} / 10k",
          ratio(tps("W6", "10k", "off", 1, "EXT"), tps("W6", big, "off", 1, "EXT")), "<=", 1.2)
    return lines


if __name__ == "__main__":
    main()
