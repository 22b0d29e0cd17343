"""Comparison baseline for issue 6: frozen all-MiniLM-L6-v2 sentence embeddings (mean pooling, L2
normalised, all 6 layers) + a 384-256-4 MLP head — the approach of the best-known Rust detector
(jailguard) — trained on exactly the same rows, windows, losses, calibration and tests as train.py.

  python baseline.py --minilm DIR --pidev PATH --corpora DIR [--results DIR] [--loso g1,g2,...]
"""

import argparse
import json
import os
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

import data as D
from bert import BertClassifier, load_pretrained
from train import (attack_prob, calibrate, calibration_points, collate, encode, fit_temperature, loss_fn,
                   metrics, windows)


@torch.no_grad()
def embed_windows(enc, tok, texts, max_tokens, stride, bs=64):
    """Per text: list of L2-normalised window embeddings (first 64 windows)."""
    enc.eval()
    flat, owner = [], []
    for i, ids in enumerate(encode(tok, texts)):
        for w in windows(ids, max_tokens, stride)[:64]:
            flat.append(w)
            owner.append(i)
    order = sorted(range(len(flat)), key=lambda j: len(flat[j]))
    out = torch.zeros((len(flat), enc.classifier.in_features))
    for b in range(0, len(order), bs):
        part = order[b:b + bs]
        x, m = collate([flat[j] for j in part])
        out[part] = F.normalize(enc.pooled(x, m), dim=-1)
    per = [[] for _ in texts]
    for j, i in enumerate(owner):
        per[i].append(out[j])
    return [torch.stack(p) for p in per]


def train_head(embs, samples, seed, epochs=30):
    torch.manual_seed(seed)
    head = nn.Sequential(nn.Linear(384, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 4))
    xs, ss = [], []
    for e, s in zip(embs, samples):
        xs.append(e[0])
        ss.append(s)
        if len(e) > 1:
            xs.append(e[-1])
            ss.append(s)
    x = torch.stack(xs)
    opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=0.01)
    rng = random.Random(seed)
    idx = list(range(len(ss)))
    for _ in range(epochs):
        rng.shuffle(idx)
        head.train()
        for b in range(0, len(idx), 64):
            part = idx[b:b + 64]
            loss = loss_fn(head(x[part]), [ss[i] for i in part])
            opt.zero_grad()
            loss.backward()
            opt.step()
    head.eval()
    return head


@torch.no_grad()
def head_logits(head, embs):
    out = []
    for e in embs:
        lg = head(e)
        p = F.softmax(lg, -1)
        out.append(lg[int((p[:, 1] + p[:, 2]).argmax())])
    return torch.stack(out)


def evaluate(head, train_e, train_s, calib_e, calib_s, tests):
    cal = head_logits(head, calib_e)
    t = fit_temperature(cal, calib_s)
    raw, _ = attack_prob(cal, t)
    points = calibration_points([r for r, s in zip(raw, calib_s) if s["attack"] == 0])
    res = {}
    for name, (e, rows) in tests.items():
        if not rows:
            continue
        raw, _ = attack_prob(head_logits(head, e), t)
        r = metrics(calibrate(raw, points), rows, threshold=0.85)
        res[name] = r
        print("baseline", name, json.dumps(r), flush=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", required=True)
    ap.add_argument("--pidev", required=True)
    ap.add_argument("--corpora", required=True)
    ap.add_argument("--results", default="results")
    ap.add_argument("--loso", default="s-labs,spikee,bipia,deepset,pyrit")
    ap.add_argument("--slabs-max", type=int, default=4000)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--seed", type=int, default=13)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(2)

    cfg = json.load(open(os.path.join(a.minilm, "config.json")))
    enc = BertClassifier(cfg, 4)
    load_pretrained(enc, load_file(os.path.join(a.minilm, "model.safetensors")), cfg["num_hidden_layers"])
    tok = Tokenizer.from_file(os.path.join(a.minilm, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()

    pidev = D.load_pidev(a.pidev)
    sl_train, sl_val, sl_test = (D.load_slabs(a.corpora, s) for s in ("train", "validation", "test"))
    nc_train, nc_val, nc_test = (D.load_neuralchemy(a.corpora, s) for s in ("train", "validation", "test"))
    if a.slabs_max and len(sl_train) > a.slabs_max:
        sl_train = random.Random(a.seed).sample(sl_train, a.slabs_max)
    yanis = D.load_yanis(a.corpora)

    everything = pidev + sl_train + sl_val + sl_test + nc_train + nc_val + nc_test + yanis
    print("embedding", len(everything), "texts", flush=True)
    embs = embed_windows(enc, tok, [s["text"] for s in everything], a.max_tokens, a.stride)
    E = {id(s): e for s, e in zip(everything, embs)}

    def pick(rows):
        return [E[id(s)] for s in rows], rows

    out = {}
    fold0 = [s for s in pidev if s["fold"] == 0]
    train = [s for s in pidev if s["fold"] != 0] + sl_train + nc_train
    calib = fold0 + sl_val + nc_val
    head = train_head(*pick(train), a.seed)
    tests = {
        "pi-dev fold 0": pick(fold0),
        "pi-dev fold 0 (de)": pick([s for s in fold0 if s["lang"] == "de"]),
        "s-labs test": pick(sl_test),
        "neuralchemy core test": pick(nc_test),
        "yanismiraoui (never trained on)": pick(yanis),
    }
    out["ship-split"] = evaluate(head, *pick(train), *pick(calib), tests)
    for g in [x for x in a.loso.split(",") if x]:
        train = [s for s in pidev + sl_train + nc_train if s["group"] != g]
        calib = [s for s in sl_val + nc_val if s["group"] != g]
        test = [s for s in pidev if s["group"] == g] or (sl_test if g == "s-labs" else nc_test)
        head = train_head(*pick(train), a.seed)
        out[f"loso-{g}"] = evaluate(head, *pick(train), *pick(calib), {g: pick(test)})
    os.makedirs(a.results, exist_ok=True)
    with open(os.path.join(a.results, "baseline.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
