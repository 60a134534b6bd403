"""Image-classification datasets in one in-memory format: :class:`Dataset`.

Every loader returns images (N, C, H, W) uint8, labels (N,) int64 and class names::

    >>> from classgap.data import load_dataset
    >>> ds = load_dataset("digits", split="train")
    >>> ds.image_shape, ds.n_classes
    ((1, 8, 8), 10)
"""

from classgap.data.arrays import load_npz_dataset, load_npz_splits, save_npz_dataset
from classgap.data.cifar import load_cifar
from classgap.data.dataset import Dataset
from classgap.data.digits import load_digits
from classgap.data.folder import (
    folder_layout,
    load_image_folder,
    load_image_folder_splits,
    resize_images,
)
from classgap.data.idx import (
    FASHION_MNIST_CLASSES,
    download_fashion_mnist,
    find_fashion_mnist,
    load_fashion_mnist,
    load_idx_pair,
    read_idx,
    write_idx,
)
from classgap.data.longtail import (
    frequency_groups,
    index_groups,
    longtail_counts,
    make_longtail,
)
from classgap.data.registry import (
    check_data_dir,
    data_source,
    dataset_info,
    list_datasets,
    load_dataset,
    load_run_data,
    load_splits,
)
from classgap.data.splits import stratified_split, stratified_subset, stratified_test_split

__all__ = [
    "FASHION_MNIST_CLASSES",
    "Dataset",
    "check_data_dir",
    "data_source",
    "dataset_info",
    "download_fashion_mnist",
    "find_fashion_mnist",
    "folder_layout",
    "frequency_groups",
    "index_groups",
    "list_datasets",
    "load_cifar",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_pair",
    "load_image_folder",
    "load_image_folder_splits",
    "load_npz_dataset",
    "load_npz_splits",
    "load_run_data",
    "load_splits",
    "longtail_counts",
    "make_longtail",
    "read_idx",
    "resize_images",
    "save_npz_dataset",
    "stratified_split",
    "stratified_subset",
    "stratified_test_split",
    "write_idx",
]
