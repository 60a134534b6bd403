"""Bring your own trainer: a training script that ``classgap study --train-cmd`` can run.

classgap fills the placeholders of the command per grid point and reads the prediction files
the script leaves in ``--out`` (``val.npz`` and ``test.npz`` with ``y_true`` and ``probs``;
any format ``classgap audit`` reads works). This one sweeps scikit-learn's own inverse L2
strength ``C``: ``--axis cmd.C=...`` is a parameter of the command only (``{C}``), recorded in
each run's config, so each value is its own run::

    classgap study --axis cmd.C=100,1,0.01 --seeds 2 \\
        --train-cmd "python examples/sklearn_train.py --C {C} --seed {seed} --out {out}"

(the command on one line). The first value of the axis is the reference the others are
compared with: here the weakest regularization. The validation and test splits are fixed, so
every run is compared on the same samples; the seed draws the training subsample, so seeds
differ as training runs do.
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

p = argparse.ArgumentParser()
p.add_argument("--C", type=float, required=True, help="inverse L2 strength (smaller: stronger)")
p.add_argument("--seed", type=int, required=True)
p.add_argument("--out", required=True)
a = p.parse_args()
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
X_tr, X_va, y_tr, y_va = train_test_split(X_tr, y_tr, test_size=0.25, random_state=0,
                                          stratify=y_tr)
keep = np.random.default_rng(a.seed).choice(len(y_tr), size=int(0.8 * len(y_tr)), replace=False)
model = LogisticRegression(C=a.C, max_iter=300).fit(X_tr[keep], y_tr[keep])
for name, X_, y_ in (("val", X_va, y_va), ("test", X_te, y_te)):
    np.savez(f"{a.out}/{name}.npz", y_true=y_, probs=model.predict_proba(X_))
