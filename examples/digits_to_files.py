"""Write scikit-learn's digits in the four layouts ``--dataset folder:`` / ``npz:`` reads.

Run it from the folder you train in (docs/guide.md, "Your own images")::

    python examples/digits_to_files.py

It writes, next to nothing else:

* ``digits_png/<class>/<i>.png``: one folder per class; training holds out a stratified
  ``data.test_fraction`` (0.2) as the test split;
* ``digits_split/train/<class>/`` and ``digits_split/test/<class>/``: the ImageFolder layout,
  classgap's fixed digits split (1,348 / 449 images);
* ``digits.npz`` with arrays ``images`` (N, H, W) uint8, ``labels`` (N,) and ``classes`` (K,);
* ``digits_split.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test`` (Keras' names).
"""

from pathlib import Path

import numpy as np
from PIL import Image

from classgap.data import load_digits

CLASS_NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                        "eight", "nine"])


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / CLASS_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(folder / f"{i:04d}.png")  # 8x8 grayscale


everything, train, test = load_digits("all"), load_digits("train"), load_digits("test")
write_folder(Path("digits_png"), everything.images, everything.labels)
write_folder(Path("digits_split") / "train", train.images, train.labels)
write_folder(Path("digits_split") / "test", test.images, test.labels)
np.savez_compressed("digits.npz", images=everything.images[:, 0], labels=everything.labels,
                    classes=CLASS_NAMES)
np.savez_compressed("digits_split.npz", x_train=train.images[:, 0], y_train=train.labels,
                    x_test=test.images[:, 0], y_test=test.labels)
print("wrote digits_png/, digits_split/, digits.npz and digits_split.npz")
