"""A minimal BERT encoder in PyTorch whose parameter names match Hugging Face / sentence-transformers
checkpoints (no `bert.` prefix), so the weights load from all-MiniLM-L6-v2 and export unchanged to
candle's `BertModel` (crates/parapet-semantic).

Architecture: Devlin et al. 2019, "BERT" (arXiv:1810.04805); exact-erf GELU as in HF `hidden_act=gelu`.
Sequence classification = mean pooling over the attention mask (as sentence-transformers pools
all-MiniLM-L6-v2) followed by one linear layer `classifier`.

Structurally pruned models (prune.py) keep the unpruned head size `hidden_size / num_attention_heads`;
layer `l` has `num_attention_heads - len(pruned_heads[str(l)])` heads (Hugging Face's `pruned_heads`
config key) and `intermediate_size` feed-forward neurons. `head_mask` / `ffn_mask` (set by prune.py)
multiply each head's output / each feed-forward neuron, for importance scoring.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c.get("hidden_dropout_prob", 0.1))

    def forward(self, ids):
        pos = torch.arange(ids.shape[1], device=ids.device).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(pos) + self.token_type_embeddings(torch.zeros_like(ids))
        return self.dropout(self.LayerNorm(x))


def head_size(c):
    return c["hidden_size"] // c["num_attention_heads"]


def layer_heads(c, layer):
    return c["num_attention_heads"] - len(c.get("pruned_heads", {}).get(str(layer), []))


class SelfAttention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        h = c["hidden_size"]
        self.heads = heads
        self.d = head_size(c)
        a = heads * self.d
        self.query = nn.Linear(h, a)
        self.key = nn.Linear(h, a)
        self.value = nn.Linear(h, a)
        self.dropout_p = c.get("attention_probs_dropout_prob", 0.1)
        self.head_mask = None

    def forward(self, x, bias):
        b, t, h = x.shape
        d = self.d

        def split(y):
            return y.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.dropout_p if self.training else 0.0)
        if self.head_mask is not None:
            out = out * self.head_mask.view(1, -1, 1, 1)
        return out.transpose(1, 2).reshape(b, t, self.heads * d)


class DenseNorm(nn.Module):
    """`dense` + dropout + residual + `LayerNorm` (HF `BertSelfOutput` / `BertOutput`)."""

    def __init__(self, c, inp):
        super().__init__()
        self.dense = nn.Linear(inp, c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c.get("hidden_dropout_prob", 0.1))

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        setattr(self, "self", SelfAttention(c, heads))
        self.output = DenseNorm(c, heads * head_size(c))

    def forward(self, x, bias):
        return self.output(getattr(self, "self")(x, bias), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])
        self.ffn_mask = None

    def forward(self, x):
        y = F.gelu(self.dense(x))
        return y if self.ffn_mask is None else y * self.ffn_mask


class Layer(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.attention = Attention(c, heads)
        self.intermediate = Intermediate(c)
        self.output = DenseNorm(c, c["intermediate_size"])

    def forward(self, x, bias):
        a = self.attention(x, bias)
        return self.output(self.intermediate(a), a)


class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c, layer_heads(c, l)) for l in range(c["num_hidden_layers"])])

    def forward(self, x, bias):
        for layer in self.layer:
            x = layer(x, bias)
        return x


class BertClassifier(nn.Module):
    """BERT encoder + mean pooling + linear head. `forward(ids, mask)` -> logits [batch, labels]."""

    def __init__(self, c, num_labels):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.dropout = nn.Dropout(0.1)
        self.classifier = nn.Linear(c["hidden_size"], num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def pooled(self, ids, mask):
        bias = torch.zeros(mask.shape, dtype=torch.float32)
        bias = bias.masked_fill(mask == 0, -1e4)[:, None, None, :]
        x = self.encoder(self.embeddings(ids), bias)
        m = mask.unsqueeze(-1).float()
        return (x * m).sum(1) / m.sum(1).clamp(min=1e-9)

    def forward(self, ids, mask):
        return self.classifier(self.dropout(self.pooled(ids, mask)))


def load_pretrained(model, state, layers):
    """Copies embeddings and the first `layers` encoder layers of a HF BERT state dict into `model`.
    Returns the names that were not found (must be only the classifier head)."""
    own = model.state_dict()
    missing = []
    for name in own:
        if name in state:
            if own[name].shape != state[name].shape:
                raise ValueError(f"shape mismatch for {name}: {tuple(own[name].shape)} vs {tuple(state[name].shape)}")
            own[name].copy_(state[name].float())
        else:
            missing.append(name)
    model.load_state_dict(own)
    return missing

