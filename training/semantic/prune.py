"""Structured pruning of a fine-tuned BertClassifier: whole attention heads and feed-forward neurons.

Importance (Michel et al. 2019, "Are Sixteen Heads Really Better than One?", arXiv:1905.10650, §4.1):
a gate m = 1 multiplies each head's output and each feed-forward neuron; the importance of a unit is
|dL/dm| (the first-order Taylor estimate of the loss change when it is removed), summed over training
batches with dropout off. Each layer keeps its `keep_heads` most important heads and `keep_ffn` most
important neurons (uniform shapes, so the saving is the same in every layer); the pruned model is then
fine-tuned again by train.py, optionally distilled from the unpruned model (Hinton et al. 2015,
arXiv:1503.02531), as in CoFi (Xia et al. 2022, arXiv:2204.00408) without its learned masks.

The result keeps Hugging Face conventions: `pruned_heads` lists the removed heads of each layer,
`intermediate_size` is the kept feed-forward width, the head size is unchanged. crates/parapet-semantic
reads each layer's shape from the weights.
"""

import copy

import torch

from bert import BertClassifier, head_size, layer_heads


def importance(model, batches, loss_of):
    """Head and neuron importance: lists (per layer) of tensors [heads] and [ffn], summed |dL/dm|.
    `batches` yields (ids, mask, samples); `loss_of(logits, samples)` is the training loss."""
    model.eval()
    layers = model.encoder.layer
    for layer in layers:
        att = getattr(layer.attention, "self")
        att.head_mask = torch.ones(att.heads, requires_grad=True)
        layer.intermediate.ffn_mask = torch.ones(layer.intermediate.dense.out_features, requires_grad=True)
    heads = [torch.zeros(getattr(l.attention, "self").heads) for l in layers]
    ffn = [torch.zeros(l.intermediate.dense.out_features) for l in layers]
    for x, m, samples in batches:
        model.zero_grad()
        loss_of(model(x, m), samples).backward()
        for i, layer in enumerate(layers):
            heads[i] += getattr(layer.attention, "self").head_mask.grad.abs()
            ffn[i] += layer.intermediate.ffn_mask.grad.abs()
            getattr(layer.attention, "self").head_mask.grad = None
            layer.intermediate.ffn_mask.grad = None
    for layer in layers:
        getattr(layer.attention, "self").head_mask = None
        layer.intermediate.ffn_mask = None
    model.zero_grad()
    return heads, ffn


def prune(model, cfg, head_scores, ffn_scores, keep_heads, keep_ffn):
    """A new (BertClassifier, config) keeping the top `keep_heads` heads and `keep_ffn` neurons of every
    layer (original order preserved). Raises ValueError if a layer has fewer units than asked."""
    d = head_size(cfg)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    new_cfg = copy.deepcopy(cfg)
    new_cfg["pruned_heads"] = {}
    new_cfg["intermediate_size"] = keep_ffn
    for l in range(cfg["num_hidden_layers"]):
        n_heads = layer_heads(cfg, l)
        if keep_heads > n_heads or keep_ffn > ffn_scores[l].numel():
            raise ValueError(f"layer {l}: cannot keep {keep_heads} heads / {keep_ffn} neurons")
        kept = sorted(torch.topk(head_scores[l], keep_heads).indices.tolist())
        # indices of the original (unpruned) model, for HF's `pruned_heads`
        orig = [h for h in range(cfg["num_attention_heads"]) if h not in cfg.get("pruned_heads", {}).get(str(l), [])]
        new_cfg["pruned_heads"][str(l)] = sorted(set(range(cfg["num_attention_heads"])) - {orig[h] for h in kept})
        rows = torch.tensor([h * d + j for h in kept for j in range(d)])
        p = f"encoder.layer.{l}"
        for qkv in ("query", "key", "value"):
            state[f"{p}.attention.self.{qkv}.weight"] = state[f"{p}.attention.self.{qkv}.weight"][rows]
            state[f"{p}.attention.self.{qkv}.bias"] = state[f"{p}.attention.self.{qkv}.bias"][rows]
        state[f"{p}.attention.output.dense.weight"] = state[f"{p}.attention.output.dense.weight"][:, rows]
        neurons = torch.sort(torch.topk(ffn_scores[l], keep_ffn).indices).values
        state[f"{p}.intermediate.dense.weight"] = state[f"{p}.intermediate.dense.weight"][neurons]
        state[f"{p}.intermediate.dense.bias"] = state[f"{p}.intermediate.dense.bias"][neurons]
        state[f"{p}.output.dense.weight"] = state[f"{p}.output.dense.weight"][:, neurons]
    pruned = BertClassifier(new_cfg, model.classifier.out_features)
    pruned.load_state_dict({k: v.contiguous() for k, v in state.items()})
    return pruned, new_cfg
