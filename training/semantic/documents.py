"""Benign documents, code and tool output for the semantic tier's training, built from the Python
standard library of the training interpreter (PSF licence), so no download is needed.

Why: the first shipped model scored everyday business text (emails, tickets, tool output) as
prompt injection, because in its training data documents mostly carried injected instructions
(BIPIA, spikee). These samples are benign documents of the same shapes, weighted as hard
negatives, so the model has to learn the instruction, not the document form.

Sources (all inside the interpreter's installation):
- e-mail messages of CPython's e-mail test suite (`test/test_email/data/msg_*.txt`), without
  MIME parts that carry base64 or binary bodies;
- plain-text documentation of standard-library modules (`pydoc.render_doc`), cut into chunks;
- standard-library source code, cut at function definitions;
- tool output: `ls -l`-style listings of standard-library folders and JSON records of installed
  distributions (`importlib.metadata`), as an agent's tool would return them.

Every sample is `benign`, group `documents`. Deterministic: sorted inputs, a seeded sample.
"""

import email
import email.policy
import importlib.metadata
import json
import os
import pydoc
import random
import re
import stat
import sysconfig
import time

MODULES = [
    "argparse", "base64", "bisect", "calendar", "collections", "configparser", "contextlib", "csv",
    "datetime", "decimal", "difflib", "email.message", "enum", "fnmatch", "fractions", "functools",
    "getpass", "glob", "gzip", "hashlib", "heapq", "hmac", "html", "http.client", "imaplib",
    "ipaddress", "itertools", "json", "logging", "mailbox", "math", "mimetypes", "operator",
    "pathlib", "pickle", "platform", "pprint", "queue", "random", "re", "sched", "secrets",
    "shlex", "shutil", "smtplib", "socket", "sqlite3", "ssl", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "timeit", "tomllib", "typing", "unittest",
    "urllib.parse", "uuid", "warnings", "weakref", "xml.etree.ElementTree", "zipfile", "zoneinfo",
]


def _chunks(text, size, limit):
    """Paragraph-aligned chunks of about `size` characters, at most `limit` of them."""
    out, cur = [], ""
    for para in text.split("\n\n"):
        if cur and len(cur) + len(para) > size:
            out.append(cur.strip())
            cur = ""
        cur += para + "\n\n"
        if len(out) >= limit:
            break
    if cur.strip() and len(out) < limit:
        out.append(cur.strip())
    return [c for c in out if len(c) >= 80]


def emails(stdlib):
    d = os.path.join(stdlib, "test", "test_email", "data")
    out = []
    if not os.path.isdir(d):
        return out
    for name in sorted(os.listdir(d)):
        if not (name.startswith("msg_") and name.endswith(".txt")):
            continue
        with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
            text = f.read()
        low = text.lower()
        if "base64" in low or "application/octet-stream" in low or "\ufffd" in text:
            continue
        msg = email.message_from_string(text, policy=email.policy.default)
        try:
            part = msg.get_body(preferencelist=("plain",))
            body = part.get_content() if part is not None else ""
        except Exception:
            continue
        if len(body.strip()) < 40:
            continue
        head = "\n".join(f"{h}: {msg[h]}" for h in ("From", "To", "Subject") if msg[h])
        out.append((head + "\n\n" + body.strip())[:1500])
    return out


# object addresses in default values (`<function f at 0x7f…>`) change with every process
ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def docs():
    out = []
    for m in MODULES:
        try:
            text = pydoc.render_doc(m, renderer=pydoc.plaintext)
        except Exception:
            continue
        out.extend(_chunks(ADDRESS.sub(" at 0x0", text), 700, 6))
    return out


def code(stdlib, rng):
    files = []
    for name in sorted(os.listdir(stdlib)):
        if name.endswith(".py") and not name.startswith("_"):
            files.append(os.path.join(stdlib, name))
    out = []
    for p in files:
        with open(p, encoding="utf-8", errors="replace") as f:
            src = f.read()
        parts = src.split("\ndef ")[1:]
        for part in parts[:4]:
            out.append(("def " + part)[:900].strip())
    rng.shuffle(out)
    return out[:250]


def listings(stdlib):
    out = []
    for sub in ["email", "json", "http", "urllib", "xml/etree", "sqlite3", "logging", "unittest",
                "concurrent/futures", "importlib", "asyncio", "tomllib", "zoneinfo", "wsgiref"]:
        d = os.path.join(stdlib, sub)
        if not os.path.isdir(d):
            continue
        lines = [f"$ ls -l {sub}"]
        for name in sorted(os.listdir(d))[:25]:
            st = os.stat(os.path.join(d, name))
            kind = "d" if stat.S_ISDIR(st.st_mode) else "-"
            day = time.strftime("%b %d %Y", time.gmtime(1700000000 + (st.st_size % 90) * 86400))
            lines.append(f"{kind}rw-r--r-- 1 app app {st.st_size:>8} {day} {name}")
        out.append("\n".join(lines))
    return out


def metadata_records():
    out = []
    for dist in sorted(importlib.metadata.distributions(), key=lambda d: (d.metadata["Name"] or "").lower()):
        md = dist.metadata
        rec = {
            "name": md["Name"],
            "version": md["Version"],
            "summary": md["Summary"],
            "license": md["License"] if md["License"] and len(md["License"]) < 80 else None,
            "requires": sorted(dist.requires or [])[:6],
        }
        out.append(json.dumps(rec, indent=2))
    return out[:120]


def load_documents(seed=13):
    """Returns `(text, kind)` pairs, deterministic for one interpreter installation."""
    rng = random.Random(seed)
    stdlib = sysconfig.get_paths()["stdlib"]
    out = [(t, "email") for t in emails(stdlib)]
    out += [(t, "docs") for t in docs()]
    out += [(t, "code") for t in code(stdlib, rng)]
    out += [(t, "tool-listing") for t in listings(stdlib)]
    out += [(t, "tool-json") for t in metadata_records()]
    return out


if __name__ == "__main__":
    from collections import Counter

    d = load_documents()
    print(len(d), Counter(k for _, k in d))
    for t, k in d[:2] + d[-2:]:
        print("---", k, "\n", t[:300])
