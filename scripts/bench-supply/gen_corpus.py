"""Writes the parapet-vs-picklescan-vs-modelscan corpus (docs/bench-supply2.md).

Usage: python3 gen_corpus.py OUTDIR [--big MB]
Needs numpy, joblib, h5py (PyPI). Only WRITES files: nothing is ever unpickled or loaded.
Every file name starts with m_ (malicious: must be flagged) or b_ (benign: must be clean).
The payloads call os.system("true") / similar and are never executed here.
"""
import bz2, gzip, io, json, lzma, os, pickle, pkgutil, importlib, runpy, struct, sys, zipfile, zlib

import h5py
import joblib
import numpy as np

out = sys.argv[1]
big_mb = int(sys.argv[sys.argv.index("--big") + 1]) if "--big" in sys.argv else 0
os.makedirs(out, exist_ok=True)
os.chdir(out)


def rd(f, a):
    class X:
        def __reduce__(self):
            return (f, a)
    return X()


def w(name, data):
    with open(name, "wb") as fh:
        fh.write(data)


EVIL = pickle.dumps(rd(os.system, ("true",)), protocol=2)

# --- pickle tricks -------------------------------------------------------------------------
w("m_os_system.pkl", EVIL)
w("m_renamed_weights.bin", EVIL)
w("m_no_extension", EVIL)
w("m_renamed_config.json", EVIL)
w("m_stack_global_p4.pkl", pickle.dumps(rd(os.system, ("true",)), protocol=4))
# memo indirection: module and name strings memoized, fetched back, then STACK_GLOBAL
w("m_memo_indirection.pkl",
  b"\x80\x04\x8c\x05posix\x940\x8c\x06system\x940h\x00h\x01\x93\x94\x8c\x04true\x85R.")
w("m_nested_loads.pkl", pickle.dumps(rd(pickle.loads, (EVIL,)), protocol=4))
# pkgutil.resolve_name("os:system")("true"): call on the result of a call
w("m_resolve_name.pkl",
  b"\x80\x04\x8c\x07pkgutil\x8c\x0cresolve_name\x93\x8c\tos:system\x85R\x8c\x04true\x85R.")
w("m_getattr_import_module.pkl",
  b"\x80\x04\x8c\x08builtins\x8c\x07getattr\x93\x8c\timportlib\x8c\rimport_module\x93"
  b"\x8c\x02os\x85R\x8c\x06system\x86R\x8c\x04true\x85R.")
w("m_builtins_exec.pkl", pickle.dumps(rd(exec, ("print(1)",)), protocol=2))
w("m_runpy.pkl", pickle.dumps(rd(runpy._run_code, ("print(1)", {})), protocol=2))
w("m_concatenated.pkl", pickle.dumps({"a": 1}, protocol=2) + EVIL)
w("m_proto0_inst.pkl", b"(S'true'\nios\nsystem\n.")
w("m_truncated_after_reduce.pkl", EVIL[:-1])

# --- PyTorch-style zips -------------------------------------------------------------------
STATE = pickle.dumps({"w": [1.0, 2.0]}, protocol=2)


def tzip(name, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(name, "w", method) as z:
        for n, d in members:
            z.writestr(n, d)


tzip("m_torch_zip.pt", [("archive/data.pkl", EVIL), ("archive/version", b"3\n")])
tzip("m_torch_payload_in_other_member.pt",
     [("archive/data.pkl", STATE), ("archive/data/0", EVIL), ("archive/version", b"3\n")])
tzip("m_torch_zip_lzma.pt", [("archive/data.pkl", EVIL), ("archive/version", b"3\n")],
     zipfile.ZIP_LZMA)
tzip("m_torch_zip_bz2.pt", [("archive/data.pkl", EVIL), ("archive/version", b"3\n")],
     zipfile.ZIP_BZIP2)
# name mismatch: the central directory says "archive/data/1", the local header "archive/data.pkl"
tzip("m_zip_name_mismatch.pt", [("archive/data.pkl", STATE), ("archive/data/1", EVIL)])
d = bytearray(open("m_zip_name_mismatch.pt", "rb").read())
i = d.find(b"archive/data/1", 30)  # first occurrence: the local header
d[i:i + 14] = b"archive/data.p"
w("m_zip_name_mismatch.pt", bytes(d))
# CRC mismatch in both headers
tzip("m_zip_crc_mismatch.pt", [("archive/data.pkl", EVIL)])
d = bytearray(open("m_zip_crc_mismatch.pt", "rb").read())
d[14:18] = b"\xde\xad\xbe\xef"
c = d.find(b"PK\x01\x02")
d[c + 16:c + 20] = b"\xde\xad\xbe\xef"
w("m_zip_crc_mismatch.pt", bytes(d))
# legacy torch "magic number" format: magic, protocol, sys_info, then the model pickle
w("m_torch_legacy.pt", pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2)
  + pickle.dumps(1001, protocol=2) + pickle.dumps({"little_endian": True}, protocol=2) + EVIL)

# --- joblib / compressed ------------------------------------------------------------------
w("m_joblib_zlib.joblib", zlib.compress(EVIL))
w("m_joblib_gzip.joblib", gzip.compress(EVIL))
w("m_joblib_bz2.joblib", bz2.compress(EVIL))
w("m_joblib_xz.joblib", lzma.compress(EVIL))
w("m_joblib_lzma.joblib", lzma.compress(EVIL, format=lzma.FORMAT_ALONE))

# --- NumPy --------------------------------------------------------------------------------
arr = np.empty(1, dtype=object)
arr[0] = rd(os.system, ("true",))
np.save("m_npy_object.npy", arr, allow_pickle=True)
np.savez("m_npz_object.npz", a=arr, b=np.arange(3.0))
os.rename("m_npy_object.npy", "m_npy_object.npy")

# --- Keras --------------------------------------------------------------------------------
LAMBDA = {"class_name": "Lambda", "config": {"name": "l", "function": ["4wEAAAAAAAAA", None, None],
                                             "function_type": "lambda"}}
DENSE = {"class_name": "Dense", "config": {"name": "d", "units": 2}}
nested = {"class_name": "Functional", "config": {"name": "f", "layers": [
    DENSE, {"class_name": "Sequential", "config": {"name": "s", "layers": [LAMBDA]}}]}}
benign = {"class_name": "Sequential", "config": {"name": "s", "layers": [DENSE]}}


def weights_h5():
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.create_group("layers/dense/vars").create_dataset("0", data=np.ones((2, 2), "float32"))
    return bio.getvalue()


def keras_zip(name, cfg):
    tzip(name, [("metadata.json", json.dumps({"keras_version": "3.4.1"}).encode()),
                ("config.json", json.dumps(cfg).encode()),
                ("model.weights.h5", weights_h5())])


def keras_h5(name, cfg):
    with h5py.File(name, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(cfg).encode()
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"d"])
        g.create_dataset("d/d/kernel:0", data=np.ones((2, 2), dtype="float32"))


toplevel = {"class_name": "Sequential", "config": {"name": "s", "layers": [DENSE, LAMBDA]}}
keras_zip("m_keras_lambda.keras", toplevel)
keras_h5("m_keras_lambda.h5", toplevel)
keras_zip("m_keras_lambda_nested.keras", nested)
keras_h5("m_keras_lambda_nested.h5", nested)
keras_zip("b_keras_dense.keras", benign)
keras_h5("b_keras_dense.h5", benign)

# --- GGUF ---------------------------------------------------------------------------------
def gguf(name, template):
    def s(x):
        b = x.encode()
        return struct.pack("<Q", len(b)) + b
    kv = [("general.architecture", "llama"), ("tokenizer.chat_template", template)]
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for k, v in kv:
        body += s(k) + struct.pack("<I", 8) + s(v)
    w(name, body)


QWEN = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
        " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|im_start|>assistant\\n' }}{% endif %}")
gguf("m_gguf_ssti.gguf", "{{ cycler.__init__.__globals__.os.popen('true').read() }}" + QWEN)
gguf("m_gguf_ssti_obfuscated.gguf",
     "{% set a = '__cla' %}{{ ''|attr(a ~ 'ss__')|attr('__m' + 'ro__') }}" + QWEN)
gguf("b_gguf_chatml.gguf", QWEN)
w("m_tokenizer_config.json", json.dumps(
    {"chat_template": "{{ lipsum.__globals__['os'].popen('true').read() }}"}).encode())
w("b_tokenizer_config.json", json.dumps({"chat_template": QWEN, "bos_token": "<s>"}).encode())
w("m_hub_config_auto_map.json", json.dumps(
    {"architectures": ["X"], "auto_map": {"AutoModel": "modeling_x.X"}}).encode())

# --- safetensors --------------------------------------------------------------------------
def st(name, tensors, data_len):
    h = json.dumps(tensors).encode()
    w(name, struct.pack("<Q", len(h)) + h + b"\0" * data_len)


st("b_model.safetensors", {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
                           "b": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}, 32)
st("m_safetensors_overlap.safetensors",
   {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}}, 24)

# --- benign controls ----------------------------------------------------------------------
w("b_dict.pkl", pickle.dumps({"w": [1.0, 2.0], "name": "x"}, protocol=2))
w("b_numpy_array.pkl", pickle.dumps(np.arange(10.0), protocol=2))
np.save("b_float.npy", np.arange(6.0).reshape(2, 3))
np.savez("b_arrays.npz", a=np.arange(3.0), b=np.ones((2, 2)))
joblib.dump({"coef": np.arange(4.0)}, "b_joblib_dict.joblib")
joblib.dump({"coef": np.arange(4.0)}, "b_joblib_dict_zlib.joblib", compress=("zlib", 3))
# torch-style state dict: OrderedDict of tensors rebuilt from persistent storages
TORCH = (b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01X\x06\x00\x00\x00weightq\x02"
         b"ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04"
         b"ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04tq\x08"
         b"QK\x00K\x02K\x02\x86q\tK\x02K\x01\x86q\n\x89h\x00)Rq\x0btq\x0cRq\rs.")
tzip("b_torch_state_dict.pt", [("archive/data.pkl", TORCH), ("archive/data/0", b"\0" * 16),
                              ("archive/version", b"3\n")])

if big_mb:
    # one large benign checkpoint (stored tensor members) and a large safetensors file
    blob = os.urandom(1 << 20)
    with zipfile.ZipFile("b_big_torch.pt", "w") as z:
        z.writestr("archive/data.pkl", TORCH)
        for i in range(big_mb):
            z.writestr(f"archive/data/{i}", blob)
    n = big_mb << 20
    st("b_big.safetensors", {"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}, 0)
    with open("b_big.safetensors", "ab") as fh:
        for _ in range(big_mb):
            fh.write(blob)
print(len(os.listdir(".")), "files in", out)
