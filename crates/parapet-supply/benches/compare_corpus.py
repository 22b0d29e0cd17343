"""Writes the small comparison corpus of docs/bench-supply.md (parapet vs picklescan).

Usage: python3 compare_corpus.py OUTDIR   (needs numpy, joblib, scikit-learn; never loads a file)
Then: parapet model scan OUTDIR --format json ; for f in OUTDIR/*; do picklescan --path "$f"; done
"""
import cProfile, importlib, os, pickle, pkgutil, runpy, sys, zipfile, zlib

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression


def rd(f, a):
    class X:
        def __reduce__(self):
            return (f, a)
    return X()


class G:
    def __reduce__(self):
        return (getattr, (rd(importlib.import_module, ("os",)), "system"))


os.makedirs(sys.argv[1], exist_ok=True)
os.chdir(sys.argv[1])
W = lambda n, o, p=2: open(n, "wb").write(pickle.dumps(o, protocol=p))
W("01_os_system.pkl", rd(os.system, ("id",)))
W("02_resolve_name.pkl", rd(pkgutil.resolve_name, ("os:system",)), 4)
W("03_getattr_import_module.pkl", G(), 4)
W("04_nested_loads.pkl", rd(pickle.loads, (pickle.dumps(rd(os.system, ("id",))),)), 4)
W("05_renamed.txt", rd(os.system, ("id",)))
W("06_cprofile_run.pkl", rd(cProfile.run, ("print(1)",)))
W("07_runpy.pkl", rd(runpy._run_code, ("print(1)", {})))
z = zipfile.ZipFile("08_torchzip_member_not_pkl.pt", "w")
z.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
z.writestr("archive/data/0", pickle.dumps(rd(os.system, ("id",))))
z.close()
open("09_truncated_after_reduce.pkl", "wb").write(pickle.dumps(rd(os.system, ("id",)), protocol=2)[:-1])
z = zipfile.ZipFile("10_crc_mismatch.pt", "w")
z.writestr("archive/data.pkl", pickle.dumps(rd(os.system, ("id",)), protocol=2))
z.close()
d = bytearray(open("10_crc_mismatch.pt", "rb").read())
i = d.find(b"PK\x01\x02")
d[i + 16:i + 20] = b"\xde\xad\xbe\xef"
d[14:18] = b"\xde\xad\xbe\xef"
open("10_crc_mismatch.pt", "wb").write(bytes(d))
open("11_joblib_zlib.joblib", "wb").write(zlib.compress(pickle.dumps(rd(os.system, ("id",)))))
X = np.random.rand(20, 3)
joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)), "20_benign_sklearn.joblib")
W("21_benign_numpy.pkl", np.arange(10.0))
W("22_benign_dict.pkl", {"w": [1.0, 2.0], "name": "x"})
