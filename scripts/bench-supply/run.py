"""Runs parapet, picklescan and modelscan on the same corpus in the same run; prints
throughput (median wall time over N whole-corpus runs) and the per-file detection table.

Usage: python3 run.py CORPUS PARAPET_SCAN_BIN VENV_BIN RUNS [BIGDIR]
A file counts as flagged by parapet when it has a finding at medium or above or an error
(exit status != 0); by picklescan when its exit status is 1 (dangerous) or 2 (error); by
modelscan when it reports an issue or an error. "skip" = the tool did not look at the file.
"""
import json, os, statistics, subprocess, sys, time

corpus, parapet, vbin, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
bigdir = sys.argv[5] if len(sys.argv) > 5 else None
PS, MS = os.path.join(vbin, "picklescan"), os.path.join(vbin, "modelscan")
SEV = ["info", "low", "medium", "high", "critical"]


def run(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t, p


def tools(path, out_json):
    return {
        "parapet": [parapet, path],
        "picklescan": [PS, "-p", path],
        "modelscan": [MS, "-p", path, "-r", "json", "-o", out_json],
    }


def size(path):
    if os.path.isfile(path):
        return os.path.getsize(path), 1
    fs = [os.path.join(path, f) for f in os.listdir(path)]
    return sum(os.path.getsize(f) for f in fs), len(fs)


def throughput(path, label):
    b, n = size(path)
    print(f"\n## throughput: {label} ({n} files, {b / 1e6:.2f} MB), median of {runs} runs\n")
    print("| tool | median wall s | files/s | MB/s |\n|---|---|---|---|")
    for name, cmd in tools(path, "/tmp/ms_tp.json").items():
        ts = [run(cmd)[0] for _ in range(runs)]
        m = statistics.median(ts)
        print(f"| {name} | {m:.3f} | {n / m:.1f} | {b / 1e6 / m:.1f} |")


def parapet_table():
    _, p = run([parapet, corpus])
    rep = json.loads(p.stdout)
    res = {}
    for f in rep["files"]:
        name = os.path.basename(f["path"])
        sev = [x["severity"] for x in f["findings"]]
        top = max(sev, key=SEV.index) if sev else None
        if f["errors"]:
            res[name] = ("error" + (f"+{top}" if top else ""), True)
        else:
            res[name] = (top or "clean", top is not None and SEV.index(top) >= 2)
    return res


def picklescan(path):
    _, p = run([PS, "-p", path])
    out = p.stdout + p.stderr
    scanned = next((l for l in out.splitlines() if l.startswith("Scanned files:")), "")
    if p.returncode == 1:
        return ("dangerous", True)
    if p.returncode == 2 or "ERROR" in out:
        return ("error", True)
    if scanned.strip().endswith(" 0"):
        return ("skip", False)
    if "could not parse" in out:
        return ("not a pickle (exit 0)", False)
    return ("clean", False)


def modelscan(path):
    o = "/tmp/ms_one.json"
    if os.path.exists(o):
        os.remove(o)
    _, p = run([MS, "-p", path, "-r", "json", "-o", o])
    try:
        rep = json.load(open(o))
    except Exception:
        return (f"no report (exit {p.returncode})", p.returncode not in (0, 3))
    issues = rep.get("issues", [])
    errs = rep.get("errors", [])
    if issues:
        top = max((i.get("severity", "").lower() for i in issues), key=lambda s: SEV.index(s) if s in SEV else 0)
        return (top, True)
    if errs:
        return ("error", True)
    scanned = rep.get("summary", {}).get("scanned", {}).get("total_scanned", None)
    if scanned == 0 or p.returncode == 3:
        return ("skip", False)
    return ("clean", False)


throughput(corpus, "detection corpus")
if bigdir:
    for f in sorted(os.listdir(bigdir)):
        throughput(os.path.join(bigdir, f), f)

pp = parapet_table()
rows, score = [], {t: [0, 0, 0, 0, 0] for t in ("parapet", "picklescan", "modelscan")}
for name in sorted(os.listdir(corpus)):
    path = os.path.join(corpus, name)
    r = {"parapet": pp.get(name, ("missing", False)), "picklescan": picklescan(path),
         "modelscan": modelscan(path)}
    mal = name.startswith("m_")
    for t, (label, flagged) in r.items():
        s = score[t]
        if mal:
            s[0] += flagged
            s[1] += 1
            s[4] += flagged and label != "error"
        else:
            s[2] += flagged
            s[3] += 1
    rows.append((name, r))
print("\n## detection (m_ = malicious, must be flagged; b_ = benign, must be clean)\n")
print("| file | parapet | picklescan | modelscan |\n|---|---|---|---|")
for name, r in rows:
    cell = lambda t: ("**" if (r[t][1] != name.startswith("m_")) else "") + r[t][0] + \
        ("**" if (r[t][1] != name.startswith("m_")) else "")
    print(f"| {name} | {cell('parapet')} | {cell('picklescan')} | {cell('modelscan')} |")
print("\n| tool | malicious flagged (finding or error) | malicious with a finding naming the payload | benign flagged (false positives) |\n|---|---|---|---|")
for t, (a, b, c, d, e) in score.items():
    print(f"| {t} | {a}/{b} | {e}/{b} | {c}/{d} |")
print("\n(bold = wrong: a malicious file not flagged, or a benign file flagged)")
