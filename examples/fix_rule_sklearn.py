"""The post-hoc fix from any framework's files: ``classgap fix`` on scikit-learn probabilities.

Two "recipes" of a logistic regression on scikit-learn's digits: C = 0.003 (the reference) and
C = 0.01 (the candidate: +1.3 points of validation accuracy, but digits 3 and 6 lose 2-3
points). Their validation and test probabilities go to CSV and parquet; then the commands a
user runs::

    classgap fix fit --reference OUT/ref_val.csv --candidate OUT/cand_val.parquet \\
        --tolerance 1 --out OUT/rule.json
    classgap fix apply OUT/rule.json OUT/cand_test.parquet --out OUT/adjusted
    classgap compare -b OUT/ref_test.csv -c OUT/cand_test.parquet --rule OUT/rule.json

Usage: ``python examples/fix_rule_sklearn.py [--out fix-demo]``; exits 1 if a command fails.
"""

import argparse
import shlex
import sys
from pathlib import Path

import pandas as pd
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from classgap.cli import run

p = argparse.ArgumentParser()
p.add_argument("--out", default="fix-demo")
out = Path(p.parse_args().out)
out.mkdir(parents=True, exist_ok=True)
X, y = load_digits(return_X_y=True)
X_tr, X_rest, y_tr, y_rest = train_test_split(X / 16.0, y, train_size=0.5, random_state=0,
                                              stratify=y)
X_va, X_te, y_va, y_te = train_test_split(X_rest, y_rest, train_size=0.5, random_state=0,
                                          stratify=y_rest)
for name, C, suffix in (("ref", 3e-3, "csv"), ("cand", 1e-2, "parquet")):
    model = LogisticRegression(C=C, max_iter=300).fit(X_tr, y_tr)
    for split, X_, y_ in (("val", X_va, y_va), ("test", X_te, y_te)):
        probs = model.predict_proba(X_)  # columns in model.classes_ order: 0..9
        table = pd.DataFrame({"y_true": y_, **{f"prob_{k}": probs[:, k] for k in range(10)}})
        path = out / f"{name}_{split}.{suffix}"
        table.to_csv(path, index=False) if suffix == "csv" else table.to_parquet(path)

commands = [
    f"fix fit --reference {out}/ref_val.csv --candidate {out}/cand_val.parquet "
    f"--tolerance 1 --out {out}/rule.json",
    f"fix apply {out}/rule.json {out}/cand_test.parquet --out {out}/adjusted",
    f"compare -b {out}/ref_test.csv -c {out}/cand_test.parquet --rule {out}/rule.json",
]
for command in commands:
    print(f"$ classgap {command}", flush=True)
    if run(shlex.split(command)) != 0:
        sys.exit(1)
